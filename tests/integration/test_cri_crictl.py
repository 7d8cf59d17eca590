"""crictl, the CRI's own command-line client, against pyruntimed's CRI socket."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cri import CRI

pytestmark = pytest.mark.timeout(300)


def _write(path: Path, obj: dict) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


def test_crictl_pod_and_container_round_trip(cri_service: CRI, tmp_path: Path) -> None:
    c = cri_service
    assert "RuntimeName:  pyruntimed" in c.crictl("version").stdout
    info = json.loads(c.crictl("info").stdout)
    assert {x["type"] for x in info["status"]["conditions"]} == {"RuntimeReady", "NetworkReady"}
    c.crictl("pull", "busybox")
    assert "docker.io/library/busybox" in c.crictl("images").stdout

    pod_json = _write(tmp_path / "pod.json", {
        "metadata": {"name": "cli", "namespace": "default", "uid": "uid-cli", "attempt": 1},
        "hostname": "cli", "log_directory": str(tmp_path / "logs"), "labels": {"app": "cli"},
        "linux": {"security_context": {"namespace_options": {"network": 2}}}})
    ctr_json = _write(tmp_path / "ctr.json", {
        "metadata": {"name": "talker"}, "image": {"image": "busybox"},
        "command": ["sh", "-c", "echo first; sleep 1; echo second; exec sleep 300"], "log_path": "talker.log"})
    pod = c.crictl("runp", pod_json).stdout.strip()
    assert pod in c.crictl("pods", "-q").stdout
    assert json.loads(c.crictl("inspectp", pod).stdout)["status"]["state"] == "SANDBOX_READY"
    ctr = c.crictl("create", pod, ctr_json, pod_json).stdout.strip()
    c.crictl("start", ctr)
    assert ctr[:13] in c.crictl("ps").stdout
    inspected = json.loads(c.crictl("inspect", ctr).stdout)
    assert inspected["status"]["state"] == "CONTAINER_RUNNING"
    assert inspected["status"]["logPath"] == str(tmp_path / "logs" / "talker.log")

    follow = subprocess.Popen([*c.crictl_args(), "logs", "-f", ctr], stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline().strip() == "first"
        assert follow.stdout.readline().strip() == "second"
    finally:
        follow.kill()
        follow.wait()
    out = c.crictl("exec", "-s", ctr, "sh", "-c", "echo from exec; hostname")
    assert out.stdout.splitlines()[0] == "from exec"
    stats = c.crictl("stats", "-o", "json").stdout
    assert ctr in stats

    c.crictl("stop", ctr)
    assert "Exited" in c.crictl("ps", "-a").stdout
    c.crictl("stopp", pod)
    assert "NotReady" in c.crictl("pods").stdout
    c.crictl("rmp", pod)
    assert c.crictl("pods", "-q").stdout.strip() == ""
    c.crictl("rmi", "busybox")
    assert "busybox" not in c.crictl("images").stdout


def test_crictl_reports_errors(cri_service: CRI) -> None:
    out = cri_service.crictl("inspect", "0" * 64, check=False)
    assert out.returncode != 0 and "not found" in out.stderr.lower()
    out = cri_service.crictl("pull", "docker.io/library/nosuchimage:1", check=False)
    assert out.returncode != 0 and "nosuchimage" in out.stderr
