"""Crash consistency (issue 6): SIGKILL either daemon, or both, at random points of pull / create / start /
stop / rm loops, 20 times; after restart and reconciliation nothing is left behind and a prune brings the
data roots back to their size before the loops."""
from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.client import Client
from tests.fixtures.daemons import EngineDaemon, mirrored_engine

KILLS = 20


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


def docker(engine: EngineDaemon, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["docker", *args], env=engine.env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", "timeout")


def du(*paths: str) -> int:
    """Bytes on disk under `paths`, but for the kept logs of removed containers; of SQLite databases only the
    pages in use.

    SQLite keeps the pages its deletes free (and its write-ahead logs until a checkpoint) without giving
    them back: how many depends on how much the loops happened to write, not on anything left behind.
    """
    total = 0
    for top in paths:
        for dirpath, dirs, files in os.walk(top):
            # The logs of removed containers are kept for `docker logs` by design, for an hour
            # (removed-logs-retention): how many depends on how many containers the loops got through.
            dirs[:] = [d for d in dirs if d != "removed-logs"]
            for name in files:
                path = os.path.join(dirpath, name)
                if name.endswith(("-wal", "-shm")):
                    continue
                try:
                    total += _live_sqlite_bytes(path) if name.endswith(".db") else os.lstat(path).st_blocks * 512
                except (OSError, sqlite3.Error):
                    pass
    return total


def _live_sqlite_bytes(path: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (pages,), (free,), (size,) = (conn.execute(f"PRAGMA {p}").fetchone()
                                      for p in ("page_count", "freelist_count", "page_size"))
        return int((pages - free) * size)
    finally:
        conn.close()


def largest(*paths: str) -> list[tuple[int, str]]:
    """The biggest files under `paths`, to say what a failed prune left."""
    found = []
    for top in paths:
        for dirpath, _, files in os.walk(top):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    found.append((os.lstat(path).st_blocks * 512, path))
                except OSError:
                    pass
    return sorted(found, reverse=True)[:8]


def roots(engine: EngineDaemon) -> tuple[str, str]:
    return engine.runtime.root, os.path.join(engine.base, "data")


async def runtime_objects(address: str) -> dict[str, int]:
    async with Client(address, "pyengine") as c:
        await c.gc()
        return {"containers": len(await c.containers()), "tasks": len(await c.tasks()),
                "snapshots": len(await c.snapshots("overlayfs")), "content": len(await c.content())}


def prune_all(engine: EngineDaemon) -> None:
    ids = docker(engine, "ps", "-aq").stdout.split()
    if ids:
        assert docker(engine, "rm", "-f", "-v", *ids).returncode == 0
    assert docker(engine, "system", "prune", "-af", "--volumes").returncode == 0
    assert docker(engine, "network", "prune", "-f").returncode == 0


def workload(engine: EngineDaemon, stop: threading.Event) -> None:
    rng = random.Random(7)
    i = 0
    while not stop.is_set():
        i += 1
        name = f"chaos{i}"
        op = rng.choice(["pull", "run", "run", "create", "stoprm"])
        if op == "pull":
            docker(engine, "pull", "-q", "busybox")
        elif op == "run":
            docker(engine, "run", "-d", "--name", name, "-v", f"cv{i % 3}:/data", "busybox", "sleep", "100")
        elif op == "create":
            docker(engine, "create", "--name", name, "busybox", "true")
            docker(engine, "start", name)
        ids = docker(engine, "ps", "-aq").stdout.split()
        if ids and op == "stoprm":
            victim = rng.choice(ids)
            docker(engine, "stop", "-t", "1", victim)
            docker(engine, "rm", "-f", victim)


@pytest.mark.slow
def test_twenty_kills_leave_nothing_behind(engine: EngineDaemon) -> None:
    prune_all(engine)
    asyncio.run(runtime_objects(engine.runtime.address))
    baseline = du(*roots(engine))

    stop = threading.Event()
    worker = threading.Thread(target=workload, args=(engine, stop), daemon=True)
    worker.start()
    rng = random.Random(11)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.5))
            which = rng.choice(["engine", "runtime", "both"])
            if which in ("engine", "both"):
                engine.kill9()
            if which in ("runtime", "both"):
                engine.runtime.kill9()
            time.sleep(rng.uniform(0, 0.3))
            if which in ("runtime", "both"):
                engine.runtime.start()
            if which in ("engine", "both"):
                engine.start()
    finally:
        stop.set()
        worker.join(120)

    time.sleep(2)  # the reconciliation of the last restart
    prune_all(engine)
    bridge = json.loads(docker(engine, "network", "inspect", "bridge").stdout)[0]
    assert bridge["Containers"] == {}  # no address still allocated
    objects = asyncio.run(runtime_objects(engine.runtime.address))
    assert objects == {"containers": 0, "tasks": 0, "snapshots": 0, "content": 0}, objects
    base = engine.runtime.base
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if base in line]
    assert mounts == []
    conmons = subprocess.run(["pgrep", "-f", f"conmon.*{base}"], capture_output=True, text=True).stdout.split()
    assert conmons == []
    netns = Path(engine.base, "exec", "netns")
    assert not netns.exists() or list(netns.iterdir()) == []
    cgroups = [p for p in Path("/sys/fs/cgroup/pids", engine.runtime.cgroup_root.lstrip("/")).rglob("cgroup.procs")
               if p.read_text().strip()]
    assert cgroups == []
    # SQLite files may keep a few pages more than before; nothing the loops stored may stay.
    assert du(*roots(engine)) <= baseline + 1024 * 1024, (baseline, du(*roots(engine)), largest(*roots(engine)))
