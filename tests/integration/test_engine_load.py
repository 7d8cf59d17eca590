"""Load (issue 6): 200 containers through create / start / stop / rm, 50 at a time, with the docker SDK."""
from __future__ import annotations

import concurrent.futures
from pathlib import Path

import docker
import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_restart_policies as policies

engine, no_leftovers = policies.engine, policies.no_leftovers
TOTAL, AT_ONCE = 200, 50


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cycle(client: docker.DockerClient, i: int) -> None:
    c = client.containers.create("busybox", ["sleep", "100"], name=f"load{i}", network_mode="none")
    c.start()
    c.stop(timeout=1)
    c.remove()


def _round(engine: EngineDaemon, first: int) -> None:
    client = docker.DockerClient(base_url=engine.host, timeout=120, max_pool_size=AT_ONCE)
    try:
        with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
            for f in [pool.submit(_cycle, client, i) for i in range(first, first + TOTAL)]:
                f.result()
    finally:
        client.close()


@pytest.mark.slow
def test_200_containers_50_at_a_time(engine: EngineDaemon) -> None:
    assert engine.proc is not None and engine.runtime.proc is not None
    _round(engine, 0)  # the first round warms caches, pools and the interpreters' arenas
    before = _rss_kib(engine.proc.pid), _rss_kib(engine.runtime.proc.pid)
    _round(engine, TOTAL)
    after = _rss_kib(engine.proc.pid), _rss_kib(engine.runtime.proc.pid)
    client = docker.DockerClient(base_url=engine.host)
    try:
        assert client.containers.list(all=True) == []
    finally:
        client.close()
    for name, b, a in zip(("pyengined", "pyruntimed"), before, after):
        assert a <= b * 1.10, f"{name} RSS grew from {b} to {a} KiB"
