"""Exits around a runtime restart keep their real codes.

A container that exits while pyruntimed is down or just back, or that is started while the engine's
monitor resubscribes and reconciles, must show its own exit code in `docker wait` and `docker inspect`,
never the 255 that stands for "the runtime has no task for it". Each round starts containers that end at
staggered moments, restarts the runtime (kill -9, or SIGTERM every few rounds) at a random moment among
those ends, stops a few more while the runtime is down (the engine can learn those exits only by
reconciling, one after the other), and keeps starting containers from two clients until the engine has
reconciled: starts are under way all along the reconciliation. 50 rounds take about two minutes.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine

ROUNDS = 50
SIGTERM_EVERY = 10  # a graceful stop waits out the engine's event stream (5 s): most rounds kill -9
# Stopped with SIGTERM while the runtime is down; each exits with a code of its own.
DOWN = {f"down{i}": 30 + i for i in range(6)}
# (sleep, code) of the containers started before each restart: they end before, during and after it.
BEFORE = {"before0": ("0", 10), "before1": ("0.3", 11), "before2": ("0.8", 12)}
# Started once the runtime is back, until the engine has reconciled.
AFTER = {f"after{i}": ("0.2", 50 + i) for i in range(40)}
CLIENTS = 2
SETTLE = 0.3  # how long the clients go on once those exits are known: the reconciliation of networks follows


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


def _create(sdk: docker.DockerClient, name: str, command: list[str], network: str = "none") -> None:
    sdk.api.create_container("busybox", command, name=name,
                             host_config=sdk.api.create_host_config(network_mode=network))


def _exit_codes(sdk: docker.DockerClient, names: list[str]) -> dict[str, tuple[int, int]]:
    """What `docker wait` and `docker inspect` (State.ExitCode) say of each container, once it has exited."""
    return {name: (sdk.api.wait(name, timeout=60)["StatusCode"], sdk.api.inspect_container(name)["State"]["ExitCode"])
            for name in names}


def _start_while_reconciling(sdk: docker.DockerClient) -> tuple[list[str], list[str]]:
    """Start AFTER containers from CLIENTS clients until the engine has recorded the DOWN exits (and a little
    longer); what was started, and the starts that failed."""
    queue = iter(AFTER)  # shared by the clients: next() on it is atomic
    reconciled = threading.Event()
    started: list[str] = []
    failed: list[str] = []

    def client() -> None:
        for name in queue:
            if reconciled.is_set():
                return
            try:
                sdk.api.start(name)
            except docker.errors.APIError as e:
                failed.append(f"{name}: start failed: {e.explanation}")
            else:
                started.append(name)

    with ThreadPoolExecutor(CLIENTS) as pool:
        clients = [pool.submit(client) for _ in range(CLIENTS)]
        for name in DOWN:
            sdk.api.wait(name, timeout=60)
        time.sleep(SETTLE)
        reconciled.set()
        for c in clients:
            c.result()
    return started, failed


def test_exits_around_runtime_restarts_keep_their_codes(engine: EngineDaemon, sdk: docker.DockerClient) -> None:
    # Created in this order, which is the order the engine reconciles them in: the exits it has to record
    # come before the containers being started meanwhile.
    for name, code in DOWN.items():
        _create(sdk, name, ["sh", "-c", f"trap 'exit {code}' TERM; sleep 1000 & wait"])
    for name, (delay, code) in BEFORE.items():
        _create(sdk, name, ["sh", "-c", f"sleep {delay}; exit {code}"])
    for i, (name, (delay, code)) in enumerate(AFTER.items()):
        # Every other one on the default bridge: its namespace must outlive the reconciliation of networks.
        _create(sdk, name, ["sh", "-c", f"sleep {delay}; exit {code}"], "bridge" if i % 2 else "none")
    expected = {**DOWN, **{name: code for name, (_, code) in {**BEFORE, **AFTER}.items()}}
    rng = random.Random(20261205)
    wrong: list[str] = []
    for r in range(ROUNDS):
        with ThreadPoolExecutor(len(DOWN) + len(BEFORE)) as pool:
            list(pool.map(sdk.api.start, [*DOWN, *BEFORE]))
        pids = [sdk.api.inspect_container(name)["State"]["Pid"] for name in DOWN]
        time.sleep(rng.uniform(0, 0.6))
        if r % SIGTERM_EVERY == SIGTERM_EVERY - 1:
            engine.runtime.stop()
        else:
            engine.runtime.kill9()
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        engine.runtime.start()
        started, failed = _start_while_reconciling(sdk)
        wrong += [f"round {r} {f}" for f in failed]
        wrong += [f"round {r} {name}: exit {expected[name]}, wait says {waited}, inspect says {inspected}"
                  for name, (waited, inspected) in _exit_codes(sdk, [*DOWN, *BEFORE, *started]).items()
                  if (waited, inspected) != (expected[name], expected[name])]
    assert not wrong, "\n".join(wrong)
    # Nor did the runtime give up on an exit (what it records when a monitor is gone without a code).
    assert "its monitor is gone without an exit" not in Path(engine.runtime.log_path).read_text(errors="replace")
