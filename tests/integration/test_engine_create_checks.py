"""dockerd's checks and defaults at create, compared through the real CLI and the API."""
from __future__ import annotations

import json
import os
import subprocess

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


def test_platforms_are_checked_as_dockerd_checks_them(engine) -> None:
    arch = json.loads(cli(engine, "image", "inspect", "busybox").stdout)[0]["Architecture"]
    other = "arm64" if arch != "arm64" else "amd64"
    out = cli(engine, "create", "--platform", f"linux/{other}", "busybox", "true")
    assert out.returncode == 1
    assert (f"image with reference busybox was found but does not match the specified platform: "
            f"wanted linux/{other}, actual: linux/{arch}") in out.stderr
    assert cli(engine, "create", "--name", "native", "--platform", f"linux/{arch}", "busybox", "true").returncode == 0
    status, _, body = curl(engine, "POST", "/v1.50/containers/create?platform=bogus", json.dumps({"Image": "busybox"}))
    assert (status, json.loads(body)) == (
        400, {"message": '"bogus": unknown operating system or architecture: invalid argument'})
    status, _, body = curl(engine, "POST", "/v1.50/images/create?fromImage=busybox&tag=latest&platform=nonsense//")
    assert status == 400 and "unknown operating system or architecture" in json.loads(body)["message"]
    assert cli(engine, "ps", "-aq", "--filter", "name=native").stdout.strip()


def test_invalid_references_in_tag_and_create(engine) -> None:
    status, _, body = curl(engine, "POST", "/v1.50/images/busybox/tag?repo=UPPER&tag=x")
    assert status == 400 and "invalid reference format: repository name" in json.loads(body)["message"]
    out = cli(engine, "create", "busybox:bad@tag", "true")
    assert out.returncode == 1 and "invalid reference format" in out.stderr


def test_env_entries_without_a_value_stay_in_config(engine) -> None:
    env = dict(os.environ)
    env.pop("NOPE_UNSET", None)
    out = subprocess.run(["docker", "run", "--name", "envs", "-e", "NOPE_UNSET", "-e", "A=1", "busybox", "env"],
                         env={**engine.env(), **{k: v for k, v in env.items() if k == "PATH"}},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "A=1" in out.stdout.split() and "NOPE_UNSET" not in out.stdout
    # dockerd's merge: the request's entries first, in its order (a bare key kept), then the image's.
    status, _, body = curl(engine, "POST", "/v1.50/containers/create?name=envs2",
                           json.dumps({"Image": "busybox", "Cmd": ["env"], "Env": ["NOPE_UNSET", "A=1"]}))
    assert status == 201, body
    config_env = json.loads(cli(engine, "inspect", "envs2").stdout)[0]["Config"]["Env"]
    assert config_env[:2] == ["NOPE_UNSET", "A=1"] and config_env[2].startswith("PATH=")
