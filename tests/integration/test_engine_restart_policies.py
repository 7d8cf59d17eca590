"""Restart policies (issue 6) with the real docker CLI: backoff, counts, stop respected, a simulated reboot."""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, ok


engine = containers.engine


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def state(engine: EngineDaemon, name: str) -> dict:
    doc = json.loads(ok(engine, "inspect", name))[0]
    return {**doc["State"], "RestartCount": doc["RestartCount"]}


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_on_failure_stops_after_the_maximum(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "flaky", "--restart", "on-failure:2", "busybox",
       "sh", "-c", "exit 3")
    until(lambda: state(engine, "flaky")["RestartCount"] == 2 and state(engine, "flaky")["Status"] == "exited")
    time.sleep(1)
    s = state(engine, "flaky")
    assert s["RestartCount"] == 2 and s["ExitCode"] == 3 and s["Status"] == "exited"


def test_on_failure_leaves_a_clean_exit(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "clean", "--restart", "on-failure", "busybox", "true")
    until(lambda: state(engine, "clean")["Status"] == "exited")
    time.sleep(0.5)
    assert state(engine, "clean")["RestartCount"] == 0


def test_always_backs_off_and_stop_is_respected(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "loop", "--restart", "always", "busybox", "true")
    # The sixth restart is counted at the exit that decides it, 1.6 s after the fifth start: that start is
    # safely before `--until 0s`, which the CLI sends in whole seconds.
    until(lambda: state(engine, "loop")["RestartCount"] >= 6)
    events = ok(engine, "events", "--since", "60s", "--until", "0s", "--filter", "container=loop",
                "--filter", "event=start", "--format", "{{.TimeNano}}").split()
    starts = [int(t) / 1e9 for t in events]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # Delays of 100, 200, 400, 800 ms between runs that each last far less than 10 s; each gap also holds a
    # start, whose cost varies with the machine's load (one slow start can add half a second), so only the
    # growth of the delay is checked: the fourth gap is at least 600 ms past the quicker of the first two.
    assert len(gaps) >= 4 and gaps[3] - min(gaps[:2]) > 0.45, gaps
    ok(engine, "stop", "-t", "1", "loop")
    count = state(engine, "loop")["RestartCount"]
    time.sleep(2)
    s = state(engine, "loop")
    assert s["Status"] == "exited" and s["RestartCount"] == count


def test_a_start_begins_the_backoff_again(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "again", "--restart", "always", "busybox", "true")
    until(lambda: state(engine, "again")["RestartCount"] >= 6)  # the loop's next delay: 6.4 s
    ok(engine, "stop", "-t", "1", "again")
    ok(engine, "start", "again")
    # As dockerd's: the user's start counts from zero and waits 100 ms, then 200 ms, before the next runs.
    until(lambda: state(engine, "again")["RestartCount"] >= 2, timeout=4)


def test_bad_policies(engine: EngineDaemon) -> None:
    bad = cli(engine, "run", "-d", "--restart", "sometimes", "busybox", "true")
    assert bad.returncode == 125
    both = cli(engine, "run", "--rm", "--restart", "always", "busybox", "true")
    assert both.returncode == 125


def test_reboot_brings_back_always_and_unless_stopped(engine: EngineDaemon) -> None:
    for name, policy in (("ra", "always"), ("ru", "unless-stopped"), ("rs", "unless-stopped"),
                         ("rn", "no")):
        ok(engine, "run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "1000")
    ok(engine, "stop", "-t", "1", "rs")
    # A host reboot: both daemons go, every container dies, the daemons come back.
    engine.stop()
    engine.runtime.stop()
    engine.runtime.kill_containers()
    engine.runtime.start()
    engine.start()
    until(lambda: state(engine, "ra")["Status"] == "running" and state(engine, "ru")["Status"] == "running")
    time.sleep(1)
    assert state(engine, "rs")["Status"] == "exited" and state(engine, "rn")["Status"] == "exited"
    assert ok(engine, "exec", "ra", "echo", "back") == "back\n"
    # As dockerd: a start with the engine's is no restart of the policy's.
    assert state(engine, "ra")["RestartCount"] == state(engine, "ru")["RestartCount"] == 0
