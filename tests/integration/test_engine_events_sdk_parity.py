"""Details a differential audit of events and the Docker SDK against dockerd found different (docs/compatibility.md,
session 18): a commit's pause and unpause events, `docker info`'s component versions, refusals of the built-in
networks, `null` for no changes and no IPAM options."""
from __future__ import annotations

import json
import subprocess
import time

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def test_a_paused_commit_tells_of_its_pause(engine) -> None:
    ok(engine, "run", "-d", "--name", "live", "busybox", "sleep", "1000")
    began = time.time()
    ok(engine, "commit", "live", "frozen:1")
    out = ok(engine, "events", "--since", str(began), "--until", str(time.time() + 1), "--format",
             "{{.Type}} {{.Action}}", "--filter", "container=live")
    assert out.split("\n")[:3] == ["container pause", "container unpause", "container commit"], out
    ok(engine, "rm", "-f", "live")
    ok(engine, "rmi", "frozen:1")


def test_info_names_the_runtime_and_runc_versions(engine) -> None:
    info = json.loads(ok(engine, "info", "--format", "{{json .}}"))
    runc = subprocess.run(["runc", "--version"], capture_output=True, text=True, check=True).stdout
    commit = next(line.split(":", 1)[1].strip() for line in runc.splitlines() if line.startswith("commit:"))
    assert info["RuncCommit"]["ID"] == commit and info["ContainerdCommit"]["ID"]
    assert {"HttpProxy", "HttpsProxy", "NoProxy", "InitCommit"} <= set(info)


def test_the_none_network_cannot_be_unplugged(engine) -> None:
    ok(engine, "create", "--name", "quiet", "--network", "none", "busybox", "true")
    out = cli(engine, "network", "disconnect", "none", "quiet")
    assert out.returncode == 1
    assert "container cannot be disconnected from none network or connected to none network" in out.stderr
    ok(engine, "rm", "quiet")


def test_no_changes_and_no_ipam_options_are_null(engine) -> None:
    ok(engine, "create", "--name", "fresh", "busybox", "true")
    status, _, body = curl(engine, "GET", "/containers/fresh/changes")
    assert (status, json.loads(body)) == (200, None)
    ok(engine, "rm", "fresh")
    assert json.loads(ok(engine, "network", "inspect", "bridge"))[0]["IPAM"]["Options"] is None
