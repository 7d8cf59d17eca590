"""pyengine run's --restart and --health-* flags, against the engine's restart policies and healthchecks."""
from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_pyengine_cli as base
from tests.integration.test_pyengine_cli import cli, ok

no_leftovers, pyengined_only = base.no_leftovers, base.pyengined_only


@pytest.fixture(scope="module")
def engine(pyengined_only: EngineDaemon) -> EngineDaemon:
    return pyengined_only


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def inspect(engine, name: str) -> dict:
    return json.loads(ok(engine, "inspect", name))[0]


def test_restart_policy_flag(engine) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "onfail", "--restart", "on-failure:1", "busybox",
       "sh", "-c", "exit 2")
    until(lambda: inspect(engine, "onfail")["RestartCount"] == 1 and not inspect(engine, "onfail")["State"]["Running"])
    assert inspect(engine, "onfail")["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 1}
    assert cli(engine, "run", "--restart", "sometimes", "busybox", "true").returncode == 125


def test_health_flags_and_on_failure(engine) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "hstop", "--health-cmd", "false", "--health-interval",
       "200ms", "--health-retries", "1", "--health-on-failure", "stop", "busybox", "sleep", "1000")
    until(lambda: not inspect(engine, "hstop")["State"]["Running"])
    assert inspect(engine, "hstop")["State"]["Health"]["Status"] == "unhealthy"
    assert cli(engine, "run", "--health-interval", "soon", "busybox", "true").returncode == 125
