"""`docker update --restart` on a container in a restart loop, 50 rounds with the real docker CLI.

Dockerd's rule (daemon/update.go, restartmanager): the new policy governs the container's next
exits; a restart already scheduled goes ahead after its delay, whatever the new policy. So a
client that updates the policy and waits for `running` sees the container run again within the
pending backoff delay plus the time a start takes, never `restarting` for longer; with `no`,
the container runs at most the pending restart and then stays `exited`.

The report ("restarting for over a minute, 1 run in 3") was a restart's task destroyed by Python's
cycle collector in the middle of its start: nothing held it then. A young daemon runs a full
collection shortly after its first update, so on a fresh engine whose first update came while a
container was restarting, about one round in two lost that restart. How often a collection meets
a start is otherwise luck; here the engine runs one every 50 ms (a sitecustomize on its
PYTHONPATH), so any task the engine holds only weakly is lost within a few rounds.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_restart_policies as policies
from tests.integration.test_engine_containers import cli, ok

engine, no_leftovers = policies.engine, policies.no_leftovers

ROUNDS = 50
WORKERS = 5  # loops side by side, as on a busy host: the 50 rounds take under a minute
# When the update comes: while the container waits out its delay, while it runs, or about when it exits.
MOMENTS = ("restarting", "running", "exit")
NEW_POLICIES = ("always", "unless-stopped", "on-failure:20", "on-failure:1", "no")
# After a restart or more, these let the next exit be the last.
ENDING = ("on-failure:1", "no")
RUN_FOR = 0.4  # each run of the looping container, in seconds
# A start takes well under a second here; a machine loaded by other test runs gets the rest.
SLACK = 8.0

# Imported by the engine's interpreter at start: a full collection every 50 ms, so a task whose only
# references form a cycle is destroyed while it waits, as a rare collection would destroy it.
GC_STRESS = """
import gc, threading, time

def _collect():
    while True:
        time.sleep(0.05)
        gc.collect()

threading.Thread(target=_collect, name="gc-stress", daemon=True).start()
"""

Seen = list[tuple[float, str, int]]


def inspect(engine: EngineDaemon, name: str) -> dict:
    doc = json.loads(ok(engine, "inspect", name))[0]
    return {**doc["State"], "RestartCount": doc["RestartCount"]}


def poll(engine: EngineDaemon, name: str, check: Callable[[dict], bool], timeout: float, seen: Seen) -> dict | None:
    """Inspect as a client waiting for a state does, until `check` holds (that state) or `timeout` passes (None)."""
    start = time.monotonic()
    while True:
        s = inspect(engine, name)
        seen.append((round(time.monotonic() - start, 2), s["Status"], s["RestartCount"]))
        if check(s):
            return s
        if time.monotonic() - start > timeout:
            return None
        time.sleep(0.03)


def one_round(engine: EngineDaemon, name: str, moment: str, policy: str, loops: int) -> str | None:
    """Loop `loops` restarts, update at `moment` of the loop, wait as a client would; what went wrong, if anything."""
    seen: Seen = []
    ok(engine, "run", "-d", "--network", "none", "--name", name, "--restart", "always", "busybox",
       "sh", "-c", f"sleep {RUN_FOR}; exit 3")
    if not poll(engine, name, lambda s: s["RestartCount"] >= loops and s["Status"] == "running", 15, seen):
        return f"never looped: {seen[-8:]}"
    if moment == "restarting" and not poll(engine, name, lambda s: s["Status"] == "restarting", 15, seen):
        return f"never restarting: {seen[-8:]}"
    if moment == "exit":
        time.sleep(RUN_FOR - 0.15)
    ok(engine, "update", "--restart", policy, name)
    after = inspect(engine, name)
    # RestartCount counts a pending restart too (as dockerd's does); the n-th restart in a row waits
    # 0.1 * 2**(n-1) s: at most this for the one pending now, or for the one the run going on gets.
    delay = 0.1 * 2 ** after["RestartCount"]
    bound = RUN_FOR + delay + SLACK
    if policy not in ENDING:
        # Restarts go on: a new run within the rest of this one and the delay, which a client sees `running`.
        if not poll(engine, name, lambda s: s["StartedAt"] != after["StartedAt"], bound, seen):
            return f"no new run within {bound:.1f}s of {after['Status']}: {seen[-8:]}"
        return None
    # The next exit is the last: only a restart already pending when the update came runs.
    runs = after["RestartCount"]
    if not poll(engine, name, lambda s: s["Status"] == "exited" and s["RestartCount"] == runs, bound + RUN_FOR, seen):
        return f"not exited after {runs} restarts within {bound + RUN_FOR:.1f}s of {after['Status']}: {seen[-8:]}"
    time.sleep(2 * delay + 0.5)  # longer than a next restart would have waited
    final = inspect(engine, name)
    if final["Status"] != "exited" or final["RestartCount"] != runs:
        return f"ran on after {runs} restarts: {final}"
    return None


def test_update_restart_policy_during_restart_loops(engine: EngineDaemon, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sitecustomize.py").write_text(GC_STRESS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    engine.restart()
    failures: list[str] = []

    def worker(first: int) -> None:
        for i in range(first, ROUNDS, WORKERS):
            # Every moment with every policy, after one and after two restarts in a row.
            moment, policy = MOMENTS[i % len(MOMENTS)], NEW_POLICIES[i // len(MOMENTS) % len(NEW_POLICIES)]
            loops = i // (len(MOMENTS) * len(NEW_POLICIES)) % 2 + 1
            name = f"loop{i}"
            try:
                failure = one_round(engine, name, moment, policy, loops)
            except AssertionError as e:  # a docker command failed
                failure = str(e)
            finally:
                cli(engine, "rm", "-f", name)
            if failure:
                failures.append(f"round {i} ({moment}, restart {loops}, -> {policy}): {failure}")

    try:
        threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # A task the event loop lost says so in the log, whether or not a round noticed.
        log = Path(engine.log_path).read_text(errors="replace")
        destroyed = [line for line in log.splitlines() if "Task was destroyed" in line]
        assert not failures and not destroyed, "\n".join(sorted(failures) + destroyed)
    finally:
        monkeypatch.undo()
        engine.restart()
