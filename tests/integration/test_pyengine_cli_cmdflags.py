"""The flags of pyengine's commands other than run/create: the request each makes is the docker CLI's for the
same flags (both CLIs against a daemon that records requests), what pyengined cannot honour is refused by
name, and the flags act against a test pyengined as docker's do."""
from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.fixtures.recorder import Recorder, recording_daemon
from tests.integration.test_pyengine_cli import PYENGINE, env_of


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Recorder]:
    with recording_daemon(str(tmp_path / "docker.sock")) as recorder:
        yield recorder


def _requests(tool: str, daemon: Recorder, args: list[str], cwd: Path, endpoint: str) -> list[tuple[str, Any, Any]]:
    daemon.requests.clear()
    subprocess.run([tool, *args], env={**daemon.env(), "DOCKER_BUILDKIT": "0"}, cwd=cwd, capture_output=True,
                   text=True, stdin=subprocess.DEVNULL, timeout=60, check=False)
    out = []
    for method, target, body in daemon.requests:
        url = urlparse(target)
        path = re.sub(r"^/v[0-9.]+", "", url.path)
        if path == endpoint:
            out.append((method, _decoded(parse_qs(url.query, keep_blank_values=True)),
                        None if isinstance(body, bytes) else _decoded(body)))
    return out


def _decoded(value: Any) -> Any:
    """A request part as Go decodes it into a struct: null, "", 0, false and empty members are absent ones
    (a query parameter given empty is not given)."""
    if isinstance(value, dict):
        kept = {k: _decoded(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", 0, False, [], {}, [""])}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def _files(tmp_path: Path) -> Path:
    (tmp_path / "env").write_text("A=1\nB=two words\n")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "empty.tar").write_bytes(b"\0" * 1024)
    return tmp_path


REQUESTS = [
    (["network", "create", "n1"], "/networks/create"),
    (["network", "create", "--ipv4=false", "--ipv6", "--subnet", "10.9.0.0/24", "--aux-address", "a=10.9.0.5",
      "--ipam-driver", "default", "--ipam-opt", "x=y", "--scope", "local", "--config-only", "--label", "l=1",
      "-o", "com.x=1", "n2"], "/networks/create"),
    (["network", "create", "--config-from", "base", "--ingress", "--internal", "--attachable", "n3"],
     "/networks/create"),
    (["network", "connect", "--ip", "10.0.0.2", "--ip6", "fd00::2", "--alias", "a", "--link", "c:d",
      "--link-local-ip", "169.254.0.2", "--driver-opt", "k=V", "--gw-priority", "5", "net", "ctr"],
     "/networks/net/connect"),
    (["network", "connect", "net", "ctr"], "/networks/net/connect"),
    (["network", "inspect", "--verbose", "net"], "/networks/net"),
    (["stop", "--timeout", "5", "-s", "USR1", "c"], "/containers/c/stop"),
    (["restart", "--time", "3", "c"], "/containers/c/restart"),
    (["rm", "-l", "-v", "-f", "c"], "/containers/c"),
    (["update", "--cpu-rt-period", "100", "--cpu-rt-runtime", "50", "c"], "/containers/c/update"),
    (["exec", "--privileged", "--env-file", "env", "-e", "C=3", "--detach-keys", "ctrl-a,x", "-u", "1", "-d", "c",
      "true"], "/containers/c/exec"),
    (["save", "--platform", "linux/arm64/v8", "-o", "out.tar", "busybox"], "/images/get"),
    (["load", "--platform", "linux/amd64", "-i", "empty.tar"], "/images/load"),
    (["push", "--platform", "linux/amd64", "reg.example/busybox:1"], "/images/reg.example/busybox/push"),
    (["pull", "--platform", "linux/amd64", "busybox:1"], "/images/create"),
    (["pull", "-a", "busybox"], "/images/create"),
    (["build", "--add-host", "a:1.2.3.4", "--add-host", "b:5.6.7.8", "--cache-from", "x:1", "--cgroup-parent", "cg",
      "--compress", "--cpu-period", "1000", "--cpu-quota", "500", "--cpu-shares", "2", "--cpuset-cpus", "0",
      "--cpuset-mems", "0", "--isolation", "default", "-m", "64m", "--memory-swap", "128m", "--platform",
      "linux/amd64", "--rm=false", "--security-opt", "seccomp=unconfined", "--shm-size", "64m", "--ulimit",
      "nofile=10:20", "--disable-content-trust", "ctx"], "/build"),
    (["build", "--isolation", "process", "--memory-swap", "-1", "ctx"], "/build"),
    (["inspect", "--type", "container", "--size", "c"], "/containers/c/json"),
    (["builder", "prune", "-f", "--keep-storage", "1gb"], "/build/prune"),
    (["network", "inspect", "net"], "/networks/net"),
    # bool flags given Go's values
    (["network", "create", "--ipv6=false", "--internal=true", "--attachable=0", "n4"], "/networks/create"),
    (["network", "create", "--ipv4=true", "--ipv6=true", "n5"], "/networks/create"),
    (["rm", "-v=false", "-f=1", "c"], "/containers/c"),
    (["build", "--rm", "--force-rm=false", "--no-cache=true", "--pull=F", "ctx"], "/build"),
    (["exec", "-d=true", "--privileged=false", "-t=0", "c", "true"], "/containers/c/exec"),
]


@pytest.mark.parametrize(("args", "endpoint"), REQUESTS, ids=[" ".join(a[:3]) for a, _ in REQUESTS])
def test_requests_are_dockers(daemon, tmp_path, args, endpoint):
    cwd = _files(tmp_path)
    theirs = _requests("docker", daemon, args, cwd, endpoint)
    ours = _requests(PYENGINE, daemon, args, cwd, endpoint)
    # The push's registry host is where the docker CLI adds docker.io for a name without one.
    if endpoint.endswith("/push"):
        theirs = theirs or _requests("docker", daemon, args, cwd, "/images/docker.io/reg.example/busybox/push")
    assert theirs, f"docker sent nothing to {endpoint}"
    if endpoint == "/images/create":
        for _, query, _ in ours + theirs:
            query.pop("fromImage")  # docker names the repository in full (docker.io/library/...)
    assert ours == theirs


REFUSED = [
    (["logs", "--details", "c"], "--details"), (["start", "--checkpoint", "cp1", "c"], "--checkpoint"),
    (["rmi", "--no-prune", "busybox"], "--no-prune"),
    (["rmi", "--platform", "linux/amd64", "busybox"], "--platform"), (["images", "--tree"], "--tree"),
    (["image", "inspect", "--platform", "linux/amd64", "busybox"], "--platform"),
    (["history", "--platform", "linux/amd64", "busybox"], "--platform"),
    (["volume", "create", "--scope", "single", "v"], "--scope"), (["volume", "ls", "--cluster"], "--cluster"),
    *(([command, "--disable-content-trust=false", operand], "--disable-content-trust") for command, operand in (
        ("pull", "busybox"), ("push", "busybox"), ("create", "busybox"), ("run", "busybox"), ("build", "."))),
]


@pytest.mark.parametrize(("args", "flag"), REFUSED, ids=[" ".join(a[:2]) for a, _ in REFUSED])
def test_what_pyengined_cannot_honour_is_refused_by_name(daemon, args, flag):
    out = subprocess.run([PYENGINE, *args], env=daemon.env(), capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 125 and flag in out.stderr
    assert [path for _, path, _ in daemon.requests if "/_ping" not in path] == []


def test_squash_is_refused_as_docker_refuses(daemon, tmp_path):
    cwd = _files(tmp_path)
    outs = [subprocess.run([tool, "build", "--squash", "ctx"], env={**daemon.env(), "DOCKER_BUILDKIT": "0"}, cwd=cwd,
                           capture_output=True, text=True, timeout=60, check=False) for tool in (PYENGINE, "docker")]
    assert outs[0].returncode == outs[1].returncode == 1
    assert outs[0].stderr.strip() in outs[1].stderr


# ---- against pyengined ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


@pytest.fixture
def clean(engine: EngineDaemon) -> Iterator[EngineDaemon]:
    yield engine
    engine.reset()


def _both(engine: EngineDaemon, *args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    run = [subprocess.run([tool, *args], env=env_of(engine), capture_output=True, text=True, timeout=120, check=False)
           for tool in (PYENGINE, "docker")]
    return run[0], run[1]


def _ok(engine: EngineDaemon, tool: str, *args: str) -> str:
    out = subprocess.run([tool, *args], env=env_of(engine), capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_exec_env_file_and_privileged(clean, tmp_path):
    (tmp_path / "env").write_text("A=1\nB=two words\n")
    _ok(clean, "docker", "run", "-d", "--name", "box", "busybox", "sleep", "300")
    script = "echo $A/$B/$C; grep CapEff /proc/self/status"
    ours, theirs = _both(clean, "exec", "--env-file", str(tmp_path / "env"), "-e", "C=3", "--privileged", "box",
                         "sh", "-c", script)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert ours.stdout.splitlines()[0] == "1/two words/3"


def test_cp_follows_links(clean, tmp_path):
    _ok(clean, "docker", "run", "-d", "--name", "box", "busybox", "sh", "-c",
        "echo inside > /target; ln -s /target /link; sleep 300")
    for tool, name in ((PYENGINE, "ours"), ("docker", "theirs")):
        (tmp_path / name).mkdir()
        _ok(clean, tool, "cp", "-L", "box:/link", str(tmp_path / name))
        assert (tmp_path / name / "link").read_text() == "inside\n"
        assert not (tmp_path / name / "link").is_symlink()
    (tmp_path / "real").write_text("host\n")
    os.symlink(tmp_path / "real", tmp_path / "hostlink")
    for tool, dest in ((PYENGINE, "/ours"), ("docker", "/theirs")):
        _ok(clean, tool, "cp", "-L", "-q", str(tmp_path / "hostlink"), f"box:{dest}")
    assert _ok(clean, "docker", "exec", "box", "sh", "-c", "cat /ours /theirs; test -L /ours || echo file") == (
        "host\nhost\nfile\n")


def test_stop_timeout_and_history_raw(clean):
    _ok(clean, "docker", "run", "-d", "--name", "box", "busybox", "sleep", "300")
    assert _ok(clean, PYENGINE, "stop", "--timeout", "1", "box") == "box\n"
    ours, theirs = _both(clean, "history", "--human=false", "--format", "{{.Size}} {{.CreatedSince}}", "busybox")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert re.fullmatch(r"(\d+ \d{4}-\d\d-\d\dT\S+\n)+", ours.stdout)


def test_system_df_verbose_and_format(clean):
    _ok(clean, "docker", "run", "-d", "--name", "web", "-v", "/data", "-v", "named:/n", "busybox", "sleep", "300")
    _ok(clean, "docker", "create", "--name", "stopped", "busybox", "true")
    _ok(clean, "docker", "volume", "create", "lonely")
    _ok(clean, "docker", "tag", "busybox", "second:name")
    # An image is one row under its first name, with its full ID outside a table.
    for args in (["-v"], ["-v", "--format", "{{range .Images}}{{.ID}} {{.Repository}}:{{.Tag}} [{{.Digest}}];{{end}}"],
                 ["--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}"],
                 ["--format", "json"], ["--format", "table {{.Type}}\t{{.Size}}"],
                 ["-v", "--format", "{{range .Images}}{{.Repository}} {{.Containers}};{{end}}|{{range .Volumes}}"
                                    "{{.Name}} {{.Links}};{{end}}|{{range .Containers}}{{.Names}} {{.LocalVolumes}};"
                                    "{{end}}"]):
        ours, theirs = _both(clean, "system", "df", *args)
        # CREATED/STATUS columns age between the two runs, and a table pads each column to its widest
        # cell: both the ages and the padding around them are masked.
        mask = [re.sub(r" {2,}", "  ", re.sub(r"(Less than a second|About a minute|\d+ (seconds?|minutes?)) ago|"
                                              r"Up [^\n]*?(?=\s{2,}|$)", "T", o.stdout, flags=re.M))
                for o in (ours, theirs)]
        assert (ours.returncode, mask[0]) == (theirs.returncode, mask[1])


def test_build_iidfile_and_compressed_context(clean, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nLABEL made=by-test\n")
    _ok(clean, PYENGINE, "build", "--compress", "--iidfile", str(tmp_path / "iid"), "-t", "made:1", str(tmp_path))
    image_id = (tmp_path / "iid").read_text()
    assert image_id.startswith("sha256:")
    assert json.loads(_ok(clean, "docker", "image", "inspect", "made:1"))[0]["Id"] == image_id
    _ok(clean, "docker", "rmi", "made:1")


def _build(engine: EngineDaemon, args: list[str], stdin: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PYENGINE, "build", *args], env=env_of(engine), input=stdin, capture_output=True,
                          timeout=120, check=False, cwd=cwd)


def test_build_from_stdin(clean, tmp_path):
    # `build -` takes a Dockerfile (a context of itself alone) or a context archive; `-f -` a Dockerfile
    # beside a context directory; stdin cannot be both.
    alone = _build(clean, ["-q", "-t", "alone", "-"], b"FROM busybox\nLABEL from=stdin\n", tmp_path)
    assert alone.returncode == 0, alone.stderr
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\nCOPY data /data\n")
    (tmp_path / "ctx" / "data").write_text("archived\n")
    archive = subprocess.run(["tar", "-cz", "-C", str(tmp_path / "ctx"), "."], capture_output=True, check=True)
    packed = _build(clean, ["-q", "-t", "packed", "-"], archive.stdout, tmp_path)
    assert packed.returncode == 0, packed.stderr
    beside = _build(clean, ["-q", "-t", "beside", "-f", "-", str(tmp_path / "ctx")],
                    b"FROM busybox\nCOPY data /other\n", tmp_path)
    assert beside.returncode == 0, beside.stderr
    assert json.loads(_ok(clean, "docker", "image", "inspect", "alone"))[0]["Config"]["Labels"] == {"from": "stdin"}
    assert _ok(clean, "docker", "run", "--rm", "packed", "cat", "/data") == "archived\n"
    assert _ok(clean, "docker", "run", "--rm", "beside", "cat", "/other") == "archived\n"
    both = _build(clean, ["-f", "-", "-"], b"FROM busybox\n", tmp_path)
    assert (both.returncode, both.stderr) == (1, b"invalid argument: can't use stdin for both build context and "
                                                 b"dockerfile\n")
    _ok(clean, "docker", "rmi", "alone", "packed", "beside")
