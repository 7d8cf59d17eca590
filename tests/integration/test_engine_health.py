"""Healthchecks (issue 6) with the real docker CLI: status, the last five results, events, actions on failure."""
from __future__ import annotations

import json
import time
from collections.abc import Callable

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_restart_policies as policies
from tests.integration.test_engine_containers import cli, ok

engine, no_leftovers = policies.engine, policies.no_leftovers
FAST = ["--health-interval", "200ms", "--health-timeout", "2s", "--health-retries", "2"]


def health(engine: EngineDaemon, name: str) -> dict:
    return json.loads(ok(engine, "inspect", "-f", "{{json .State.Health}}", name))


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_healthy_then_unhealthy_with_events(engine: EngineDaemon) -> None:
    since = str(time.time())
    ok(engine, "run", "-d", "--network", "none", "--name", "probe", *FAST, "--health-cmd", "cat /tmp/ok",
       "busybox", "sh", "-c", "touch /tmp/ok; sleep 1000")
    assert health(engine, "probe")["Status"] in ("starting", "healthy")
    until(lambda: health(engine, "probe")["Status"] == "healthy")
    assert "(healthy)" in ok(engine, "ps", "--filter", "name=probe", "--format", "{{.Status}}")
    assert ok(engine, "ps", "-q", "--filter", "health=healthy").strip()
    ok(engine, "exec", "probe", "rm", "/tmp/ok")
    until(lambda: health(engine, "probe")["Status"] == "unhealthy")
    h = health(engine, "probe")
    assert h["FailingStreak"] >= 2 and len(h["Log"]) <= 5
    assert h["Log"][-1]["ExitCode"] == 1 and "No such file" in h["Log"][-1]["Output"]
    events = ok(engine, "events", "--since", since, "--until", str(time.time()), "--filter", "container=probe",
                "--format", "{{.Action}}").split("\n")
    assert "health_status: healthy" in events and "health_status: unhealthy" in events
    assert state_running(engine, "probe")  # Docker's default: an unhealthy container just runs on


def state_running(engine: EngineDaemon, name: str) -> bool:
    return json.loads(ok(engine, "inspect", "-f", "{{json .State.Running}}", name))


def test_timeout_counts_as_failure(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "slow", "--health-interval", "200ms",
       "--health-timeout", "300ms", "--health-retries", "1", "--health-cmd", "sleep 5", "busybox", "sleep", "1000")
    until(lambda: health(engine, "slow")["Status"] == "unhealthy")
    # The timeout as Go prints a duration, dockerd's words.
    assert health(engine, "slow")["Log"][-1]["Output"] == "Health check exceeded timeout (300ms)"


def test_a_probe_is_a_non_tty_exec(engine: EngineDaemon) -> None:
    # A `-t` container's process has TERM; its probes, like a `docker exec` without -t, do not.
    ok(engine, "run", "-d", "-t", "--network", "none", "--name", "tty", "-e", "MINE=1", *FAST, "--health-cmd",
       "env | sort | grep -E '^(TERM|MINE)='; true", "busybox", "sleep", "1000")
    until(lambda: health(engine, "tty")["Status"] == "healthy")
    assert health(engine, "tty")["Log"][-1]["Output"] == "MINE=1\n"


def test_on_failure_restart_acts(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "healer", *FAST, "--health-cmd", "false",
       "--label", "io.pyengine.health-on-failure=restart", "busybox", "sleep", "1000")
    until(lambda: json.loads(ok(engine, "inspect", "-f", "{{json .RestartCount}}", "healer")) >= 1)
    ok(engine, "run", "-d", "--network", "none", "--name", "stopper", *FAST, "--health-cmd", "false",
       "--label", "io.pyengine.health-on-failure=stop", "busybox", "sleep", "1000")
    until(lambda: not state_running(engine, "stopper"))
    bad = cli(engine, "run", "-d", "--label", "io.pyengine.health-on-failure=explode", "busybox", "true")
    assert bad.returncode == 125


def test_no_healthcheck(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "plain", "--no-healthcheck", "busybox", "sleep", "100")
    assert ok(engine, "inspect", "-f", "{{json .State.Health}}", "plain").strip() == "null"

