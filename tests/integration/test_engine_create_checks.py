"""dockerd's checks and defaults at create, compared through the real CLI and the API."""
from __future__ import annotations

import json

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl

engine, no_leftovers = containers.engine, containers.no_leftovers


def test_an_empty_command_is_created_and_fails_at_start(engine) -> None:
    status, _, body = curl(engine, "POST", "/v1.41/containers/create?name=empty",
                           json.dumps({"Image": "busybox", "Entrypoint": [""], "Cmd": [""]}))
    assert status == 201, body
    started = cli(engine, "start", "empty")
    assert started.returncode != 0 and "executable file not found" in started.stderr
    state = json.loads(cli(engine, "inspect", "empty").stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("created", 127)


def test_healthcheck_durations_below_a_millisecond_are_refused(engine) -> None:
    out = cli(engine, "create", "--health-cmd", "true", "--health-interval", "500us", "busybox", "true")
    assert out.returncode != 0 and "Interval in Healthcheck cannot be less than 1ms" in out.stderr
    status, _, body = curl(engine, "POST", "/v1.41/containers/create",
                           json.dumps({"Image": "busybox", "Cmd": ["true"], "Healthcheck": {"Retries": -2}}))
    assert (status, json.loads(body)) == (400, {"message": "Retries in Healthcheck cannot be negative"})
