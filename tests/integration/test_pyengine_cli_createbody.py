"""pyengine run/create send the docker CLI's POST /containers/create body for the same flags, and refuse
the values docker refuses with its words and exit code; both CLIs talk to a daemon that records requests."""
from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.recorder import CONTAINER_ID, Recorder, recording_daemon
from tests.integration.test_pyengine_cli import PYENGINE


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Recorder]:
    with recording_daemon(str(tmp_path / "docker.sock")) as recorder:
        yield recorder


def _run(tool: str, daemon: Recorder, args: list[str], env: dict[str, str] | None = None) -> tuple[
        subprocess.CompletedProcess[str], Any]:
    daemon.requests.clear()
    out = subprocess.run([tool, *args], env={**daemon.env(), **(env or {})}, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=60, check=False)
    bodies = daemon.bodies("POST", "/containers/create")
    return out, bodies[-1] if bodies else None


def _go_decoded(value: Any) -> Any:
    """A JSON value as Go decodes it: a null member is the same as an absent one."""
    if isinstance(value, dict):
        return {k: _go_decoded(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_go_decoded(v) for v in value]
    return value


def both(daemon: Recorder, *args: str, env: dict[str, str] | None = None) -> tuple[Any, Any]:
    theirs, their_body = _run("docker", daemon, list(args), env)
    ours, our_body = _run(PYENGINE, daemon, list(args), env)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    return _go_decoded(our_body), _go_decoded(their_body)


FLAG_GROUPS = {
    "defaults": [],
    "blkio": ["--blkio-weight", "300", "--blkio-weight-device", "/dev/sda:200", "--device-read-bps", "/dev/sda:1mb",
              "--device-write-bps", "/dev/sdb:10", "--device-read-iops", "/dev/sda:100", "--device-write-iops",
              "/dev/sda:5"],
    "cgroups": ["--cgroupns", "private", "--cgroup-parent", "app.slice", "--device-cgroup-rule", "c 1:3 rmw",
                "--device-cgroup-rule", "b *:* r", "--cpu-rt-period", "1000", "--cpu-rt-runtime", "500",
                "--memory-swappiness", "0"],
    "runtime": ["--annotation", "a=b", "--annotation", "bare", "--runtime", "runc", "--userns", "host",
                "--isolation", "default", "--storage-opt", "size=1G", "--volume-driver", "local"],
    "gpus": ["--gpus", "all", "--gpus", "count=2,driver=nvidia", "--gpus", "device=0,1",
             "--gpus", '"capabilities=compute,utility","options=a=b,c=d"'],
    "volumes-from-and-links": ["--volumes-from", "data:ro", "--volumes-from", "other", "--link", "db:database",
                               "--link", "cache"],
    "short-network-flags": ["--ip6", "2001:db8::33", "--link-local-ip", "169.254.1.1", "--mac-address",
                            "92:d0:c6:0a:29:33"],
    "user-network": ["--network", "mynet", "--network-alias", "web", "--ip", "10.1.1.2", "--link", "db:d"],
    "bridge-alone": ["--network", "bridge"],
    "long-network-syntax": ["--network", "name=front,alias=a1,alias=a2,ip=10.0.0.5,ip6=fd00::5,driver-opt=com.x=Y,"
                                         "gw-priority=3,mac-address=92:d0:c6:0a:29:34,link-local-ip=169.254.0.9",
                            "--network", "back"],
    "kernel-memory": ["--kernel-memory", "64m"],
    # Go's flag syntax: a bool flag takes =VALUE (an explicit --init=false is sent), and a shorthand its
    # value after "=".
    "go-flag-values": ["--init=false", "--rm=false", "-it=false", "--privileged=F", "--read-only=1", "-P=true",
                       "-e=A=1", "-p=8080:80", "-l=k=v"],
}


@pytest.mark.parametrize("group", list(FLAG_GROUPS))
def test_create_body_is_dockers(daemon, group):
    ours, theirs = both(daemon, "create", *FLAG_GROUPS[group], "busybox", "true")
    assert ours == theirs


def test_run_body_is_dockers(daemon):
    flags = [*FLAG_GROUPS["cgroups"], *FLAG_GROUPS["runtime"], "-d", "--name", "r"]
    ours, theirs = both(daemon, "run", *flags, "busybox", "true")
    assert ours == theirs


def test_use_api_socket(daemon, tmp_path):
    ours, theirs = both(daemon, "create", "--use-api-socket", "busybox")
    assert ours == theirs
    assert ours["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": daemon.socket_path,
                                             "Target": "/var/run/docker.sock", "BindOptions": {}}]
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {"registry.example:5000": {"auth": "dTpw"}}}))
    ours, theirs = both(daemon, "create", "--use-api-socket", "busybox", env={"DOCKER_CONFIG": str(config)})
    assert ours == theirs and "DOCKER_CONFIG=/run/secrets/docker" in ours["Env"]
    # The logins go in after the create, as a tar of /run/secrets/docker/config.json.
    copies = [(path, body) for method, path, body in daemon.requests if method == "PUT"]
    assert len(copies) == 1 and copies[0][0].endswith(f"/containers/{CONTAINER_ID}/archive?noOverwriteDirNonDir=true&path=%2F")
    with tarfile.open(fileobj=io.BytesIO(copies[0][1])) as tar:
        member = tar.getmember("run/secrets/docker/config.json")
        assert member.mode == 0o600
        assert json.load(tar.extractfile(member))["auths"] == {"registry.example:5000": {"auth": "dTpw"}}


BAD = [
    ["--blkio-weight", "x"], ["--blkio-weight-device", "/dev/sda:5"], ["--blkio-weight-device", "sda:500"],
    ["--device-read-bps", "/dev/sda:x"], ["--device-write-iops", "/dev/sda:1k"], ["--device-read-iops", "nocolon"],
    ["--device-cgroup-rule", "x 1:2 r"], ["--storage-opt", "size"], ["--cgroupns", "foo"], ["--userns", "foo"],
    ["--memory-swappiness", "200"], ["--link", "a:b:c"], ["--kernel-memory", "zz"], ["--gpus", "nope"],
    ["--gpus", "count=2,count=3"], ["--gpus", "bad=1"], ["--mac-address", "zz"],
    ["--network", "name=a,foo=b"], ["--network", "alias=x"], ["--network", "a", "--network", "a"],
    ["--network", "host", "--network", "mynet"], ["--network", "bridge", "--network-alias", "x"],
    ["--network", "name=n,alias=a", "--network-alias", "b"], ["--network", "name=n,ip=10.0.0.1", "--ip", "10.0.0.2"],
    ["--cpu-count", "2", "--io-maxiops", "3"], ["--cpu-percent", "10"], ["--io-maxbandwidth", "1m"],
    ["--rm=maybe"], ["-t=yes"], ["--init=2"],
]


def _message(stderr: str) -> list[str]:
    """docker's message lines, without the `docker: ` its own checks put first and the usage text after."""
    lines = stderr.splitlines()
    lines = lines[:lines.index("")] if "" in lines else lines
    return [lines[0].removeprefix("docker: "), *lines[1:]] if lines else []


@pytest.mark.parametrize("flags", BAD, ids=[" ".join(f) for f in BAD])
@pytest.mark.parametrize("command", ["create", "run"])
def test_refused_as_docker_refuses(daemon, command, flags):
    theirs, _ = _run("docker", daemon, [command, *flags, "busybox"])
    ours, body = _run(PYENGINE, daemon, [command, *flags, "busybox"])
    assert body is None
    assert (ours.returncode, _message(ours.stderr)) == (theirs.returncode, _message(theirs.stderr))
    assert ours.returncode != 0
