"""Lifecycle details a differential audit against dockerd 20.10 found different (docs/compatibility.md, session
17): which kills end a container for its restart policy, a start of a restarting one, healthchecks of paused
and stopped containers, the wait answer after a failed start."""
from __future__ import annotations

import json
import subprocess
import time

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def _state(engine, ref: str) -> dict:
    return json.loads(ok(engine, "inspect", ref))[0]


def _until(predicate, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_kill_ends_a_container_for_its_restart_policy_as_dockerd_decides(engine) -> None:
    # No StopSignal: any signal is its user's end of it.
    ok(engine, "run", "-d", "--name", "hup", "--init", "--restart", "always", "busybox", "sleep", "1000")
    ok(engine, "kill", "-s", "HUP", "hup")
    _until(lambda: not _state(engine, "hup")["State"]["Running"])
    time.sleep(1)
    state = _state(engine, "hup")
    assert (state["State"]["Status"], state["State"]["ExitCode"], state["RestartCount"]) == ("exited", 129, 0)
    # With a StopSignal, another signal is no end: the policy restarts it.
    ok(engine, "run", "-d", "--name", "usr", "--init", "--stop-signal", "USR1", "--restart", "always", "busybox",
       "sleep", "1000")
    ok(engine, "kill", "-s", "TERM", "usr")
    _until(lambda: _state(engine, "usr")["RestartCount"] == 1)
    ok(engine, "rm", "-f", "hup", "usr")


def test_a_restarting_container_is_left_to_its_loop(engine) -> None:
    ok(engine, "run", "-d", "--name", "loop", "--restart", "always", "busybox", "false")
    _until(lambda: _state(engine, "loop")["RestartCount"] >= 3)
    _until(lambda: _state(engine, "loop")["State"]["Restarting"])
    count = _state(engine, "loop")["RestartCount"]
    assert ok(engine, "start", "loop") == "loop\n"
    assert _state(engine, "loop")["RestartCount"] <= count + 1
    out = cli(engine, "exec", "loop", "true")
    assert out.returncode != 0 and ("is restarting, wait until the container is running" in out.stderr
                                    or "is not running" in out.stderr), out.stderr
    ok(engine, "rm", "-f", "loop")


def test_healthchecks_of_paused_and_stopped_containers(engine) -> None:
    ok(engine, "run", "-d", "--name", "hc", "--health-cmd", "true", "--health-interval", "200ms", "busybox",
       "sleep", "1000")
    _until(lambda: _state(engine, "hc")["State"]["Health"]["Status"] == "healthy")
    ok(engine, "pause", "hc")
    health = _state(engine, "hc")["State"]["Health"]
    assert health["Status"] == "unhealthy" and health["FailingStreak"] == 0
    logged = len(health["Log"])
    time.sleep(0.8)
    assert len(_state(engine, "hc")["State"]["Health"]["Log"]) == logged  # no probes of a frozen container
    assert ok(engine, "ps", "--format", "{{.Status}}", "--filter", "name=hc").strip().endswith("(Paused)")
    ok(engine, "unpause", "hc")
    _until(lambda: _state(engine, "hc")["State"]["Health"]["Status"] == "healthy")
    ok(engine, "stop", "-t", "0", "hc")
    assert _state(engine, "hc")["State"]["Health"]["Status"] == "unhealthy"
    assert ok(engine, "ps", "-aq", "--filter", "health=unhealthy", "--filter", "name=hc") != ""
    ok(engine, "start", "hc")
    health = _state(engine, "hc")["State"]["Health"]
    assert health["Status"] == "starting" and len(health["Log"]) >= 1  # the last results are kept
    ok(engine, "rm", "-f", "hc")


def test_the_wait_answer_after_a_failed_start_carries_its_error(engine) -> None:
    ok(engine, "create", "--name", "nosuch", "--network", "none", "busybox", "/nonexistent")
    assert cli(engine, "start", "nosuch").returncode != 0
    status, _, body = curl(engine, "POST", "/v1.50/containers/nosuch/wait")
    doc = json.loads(body)
    assert status == 200 and doc["StatusCode"] == 127 and "/nonexistent" in doc["Error"]["Message"], body
    ok(engine, "rm", "nosuch")
    ok(engine, "run", "--name", "fine", "--network", "none", "busybox", "true")
    assert json.loads(curl(engine, "POST", "/v1.50/containers/fine/wait")[2]) == {"Error": None, "StatusCode": 0}
    ok(engine, "rm", "fine")


def test_a_second_stop_acts_at_once_beside_the_first(engine) -> None:
    # The process ignores TERM: the first stop would wait its 60 s; the second kills after its own 1 s, and
    # both return then, as with dockerd.
    ok(engine, "run", "-d", "--name", "deaf", "--init", "busybox", "sh", "-c", "trap '' TERM; sleep 1000")
    first = subprocess.Popen(["docker", "stop", "-t", "60", "deaf"], env=engine.env(), stdout=subprocess.DEVNULL)
    _until(lambda: any(e.get("Action") == "kill" for e in _events(engine, "deaf")))
    began = time.monotonic()
    assert ok(engine, "stop", "-t", "1", "deaf") == "deaf\n"
    assert first.wait(timeout=30) == 0
    assert time.monotonic() - began < 20
    state = _state(engine, "deaf")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    ok(engine, "rm", "deaf")


def _events(engine, name: str) -> list[dict]:
    out = ok(engine, "events", "--since", "0", "--until", str(time.time()), "--format", "{{json .}}",
             "--filter", f"container={name}")
    return [json.loads(line) for line in out.splitlines()]
