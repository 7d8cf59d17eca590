"""The pyengine CLI against a scripted stand-in daemon: the requests it makes and what it prints, for cases
(found by comparing it with the docker CLI 28) that a real daemon would make slow or racy to set up."""
from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fixtures.serving import serving

PYENGINE = Path(sys.executable).parent / "pyengine"

# An answer: status and JSON body, or a callable given the socket's writer for answers that stream or hijack.
Answer = tuple[int, Any] | Callable[[Any], None]


class _Daemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    api_version = "1.50"
    routes: dict[tuple[str, str], Answer]
    requests: list[tuple[str, str, dict[str, list[str]]]]


class _Handler(socketserver.StreamRequestHandler):
    server: _Daemon

    def handle(self) -> None:
        method, target = self.rfile.readline().decode().split()[:2]
        length, chunked = 0, False
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            length = int(value) if name.lower() == "content-length" else length
            chunked = chunked or name.lower() == "transfer-encoding"
        if chunked:
            while size := int(self.rfile.readline().split(b";")[0], 16):
                self.rfile.read(size + 2)
            self.rfile.readline()
        else:
            self.rfile.read(length)
        url = urlsplit(target)
        path = url.path.split("/", 2)[2] if url.path.startswith("/v1.") else url.path.lstrip("/")
        self.server.requests.append((method, url.path, parse_qs(url.query)))
        answer = self.server.routes.get((method, "/" + path), (404, {"message": f"no route {method} /{path}"}))
        if callable(answer):
            answer(self.wfile)
            return
        status, body = answer
        data = b"OK" if path == "_ping" else json.dumps(body).encode()
        self.wfile.write(f"HTTP/1.1 {status} X\r\nAPI-Version: {self.server.api_version}\r\nContent-Type: "
                         f"application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[_Daemon]:
    server = _Daemon(str(tmp_path / "d.sock"), _Handler)
    server.routes = {("GET", "/_ping"): (200, None)}
    server.requests = []
    with serving(server):
        yield server


def cli(daemon: _Daemon | None, *args: str, env: dict[str, str] | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    host = f"unix://{daemon.server_address}" if daemon else "unix:///nonexistent/engine.sock"
    environ = {k: v for k, v in os.environ.items() if k != "DOCKER_API_VERSION"}
    environ.update({"DOCKER_HOST": host, **(env or {})})
    return subprocess.run([str(PYENGINE), *args], capture_output=True, text=True, timeout=timeout, env=environ,
                          stdin=subprocess.DEVNULL)


def _frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_attach_ends_when_the_wait_answers_on_a_stream_left_open(daemon: _Daemon) -> None:
    # The process exited between the CLI's inspect and its hijack: the daemon keeps the attach open.
    held = threading.Event()

    def attach(out: Any) -> None:
        out.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                  b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + _frame(1, b"late\n"))
        out.flush()
        held.wait(30)

    def wait(out: Any) -> None:
        time.sleep(0.2)
        body = b'{"StatusCode":6}'
        out.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    daemon.routes.update({
        ("GET", "/containers/at4/json"): (200, {"Id": "abc", "Config": {}, "State": {"Running": True}}),
        ("POST", "/containers/abc/wait"): wait, ("POST", "/containers/abc/attach"): attach})
    started = time.monotonic()
    try:
        out = cli(daemon, "attach", "at4", timeout=10)
    finally:
        held.set()
    assert (out.returncode, out.stdout, out.stderr) == (6, "late\n", "")
    assert time.monotonic() - started < 5


_VERSION = {"Platform": {"Name": "pyengined"}, "Version": "1.0", "ApiVersion": "1.50", "MinAPIVersion": "1.24",
            "GoVersion": "python3.11.9", "Os": "linux", "Arch": "amd64", "Components": []}


def test_version_and_info_templates_take_go_field_names(daemon: _Daemon) -> None:
    daemon.routes.update({("GET", "/version"): (200, _VERSION),
                          ("GET", "/info"): (200, {"HttpProxy": "http://proxy", "Name": "host"})})
    version = cli(daemon, "version", "-f", "{{.Server.APIVersion}} {{.Client.APIVersion}} {{.Client.Context}} "
                                           "{{.Client.GoVersion}} {{.Server.ApiVersion}}")
    assert version.stdout == "1.50 1.50 default python%d.%d.%d 1.50\n" % sys.version_info[:3], version.stderr
    # `json` shows the JSON keys only.
    assert json.loads(cli(daemon, "version", "-f", "{{json .Server}}").stdout) == _VERSION
    info = cli(daemon, "info", "-f", "{{.ClientInfo.Debug}} {{.ClientInfo.Plugins}} {{.ClientInfo.Context}} "
                                     "{{.HTTPProxy}} {{.Name}}")
    assert info.stdout == "false [] default http://proxy host\n", info.stderr
    pinned = cli(daemon, "version", "-f", "{{.Client.APIVersion}} {{.Server.APIVersion}}",
                 env={"DOCKER_API_VERSION": "1.41"})
    assert pinned.stdout == "1.41 1.50\n"


def test_version_template_without_a_daemon_prints_the_client_then_fails() -> None:
    out = cli(None, "version", "-f", "{{.Client.Version}}")
    assert out.returncode == 1 and out.stdout.strip() and out.stderr == (
        "Cannot connect to the Docker daemon at unix:///nonexistent/engine.sock. Is the docker daemon running?\n")


def test_docker_api_version_is_pinned_not_negotiated(daemon: _Daemon) -> None:
    daemon.api_version = "1.41"
    daemon.routes[("GET", "/containers/json")] = (200, [])
    assert cli(daemon, "ps", "-q", env={"DOCKER_API_VERSION": "1.45"}).returncode == 0
    assert [path for _, path, _ in daemon.requests] == ["/v1.45/containers/json"]
    daemon.requests.clear()
    assert cli(daemon, "ps", "-q").returncode == 0
    assert [path for _, path, _ in daemon.requests] == ["/_ping", "/v1.41/containers/json"]
    # A flag that needs a newer API is refused in docker's words before anything is removed.
    daemon.requests.clear()
    out = cli(daemon, "volume", "prune", "-a", "-f", env={"DOCKER_API_VERSION": "1.41"})
    assert (out.returncode, out.stderr) == (
        1, '"--all" requires API version 1.42, but the Docker daemon API version is 1.41\n')
    assert not daemon.requests


def _stream(*messages: dict[str, Any]) -> Callable[[Any], None]:
    def answer(out: Any) -> None:
        body = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
        out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))

    return answer


def test_events_format_takes_go_field_names_and_table_is_text(daemon: _Daemon) -> None:
    die = {"status": "die", "id": "0963d955", "from": "busybox", "Type": "container", "Action": "die",
           "Actor": {"ID": "0963d955", "Attributes": {}}, "scope": "local", "time": 1796671946,
           "timeNano": 1796671946000000001}
    created = {"Type": "network", "Action": "create", "Actor": {"ID": "n1", "Attributes": {}}, "scope": "local",
               "time": 1796671947, "timeNano": 1796671947000000000}
    daemon.routes[("GET", "/events")] = _stream(die, created)
    out = cli(daemon, "events", "--format", "{{.Status}}|{{.ID}}|{{.From}}|{{.Time}}|{{.TimeNano}}|{{.Scope}}")
    assert out.stdout == ("die|0963d955|busybox|1796671946|1796671946000000001|local\n"
                          "|||1796671947|1796671947000000000|local\n"), out.stderr
    table = cli(daemon, "events", "--format", "table {{.Type}}\\t{{.Action}}")
    assert table.stdout == "table container\\tdie\ntable network\\tcreate\n"


def test_build_checks_on_this_side_and_sends_bare_labels_empty(daemon: _Daemon, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    daemon.routes[("POST", "/build")] = _stream({"aux": {"ID": "sha256:abc"}}, {"stream": "sha256:abc\n"})
    out = cli(daemon, "build", "-q", "--label", "a", "--label", "b=1", str(tmp_path))
    assert (out.returncode, out.stdout) == (0, "sha256:abc\n"), out.stderr
    assert json.loads(daemon.requests[-1][2]["labels"][0]) == {"a": "", "b": "1"}
    iid = cli(daemon, "build", "-q", "--iidfile", "/nonexistent/d/iid", str(tmp_path))
    assert (iid.returncode, iid.stderr) == (1, "open /nonexistent/d/iid: no such file or directory\n")
    daemon.requests.clear()
    for args, code, error in [
        (["-t", "a:b:c"], 125, 'invalid argument "a:b:c" for "-t, --tag" flag: invalid reference format'),
        (["-t", "Bad:Tag"], 125, 'invalid argument "Bad:Tag" for "-t, --tag" flag: invalid reference format: '
                                 "repository name (library/Bad) must be lowercase"),
        (["-f", str(tmp_path / "nosuch")], 1, "unable to prepare context: unable to evaluate symlinks in "
                                              f"Dockerfile path: lstat {tmp_path}/nosuch: no such file or directory"),
        (["-f", "/etc"], 1, "read /etc: is a directory"),
    ]:
        out = cli(daemon, "build", *args, str(tmp_path))
        assert (out.returncode, out.stderr) == (code, error + "\n")
    assert not [r for r in daemon.requests if r[1].endswith("/build")]


@pytest.mark.parametrize(("args", "error"), [
    (["save", "-o", "/nonexistent/d/x.tar", "busybox"],
     "failed to save image: invalid output path: stat /nonexistent/d: no such file or directory"),
    (["save", "-o", "/etc", "busybox"], "failed to save image: cannot write to a directory"),
    (["export", "-o", "/nonexistent/d/x.tar", "c2"],
     "failed to export container: invalid output path: stat /nonexistent/d: no such file or directory"),
    (["tag", "busybox", "Bad:Tag"], 'Error parsing reference: "Bad:Tag" is not a valid repository/tag: invalid '
                                    "reference format: repository name (library/Bad) must be lowercase"),
    (["inspect", "--type", "bogus", "x"], 'unknown type: "bogus": must be one of "config", "container", "image", '
                                          '"network", "node", "plugin", "secret", "service", "task", "volume"'),
    (["events", "--since", "bogus"], 'failed to parse value as time or duration: "bogus"'),
    (["exec", "--env-file", "/nonexistent", "c", "true"], "open /nonexistent: no such file or directory"),
    (["run", "-d", "-a", "stdout", "busybox", "true"], "conflicting options: cannot specify both --attach and "
                                                       "--detach"),
    (["ps"], "Cannot connect to the Docker daemon at unix:///nonexistent/engine.sock. Is the docker daemon running?"),
])
def test_client_side_errors_in_docker_s_words(args: list[str], error: str) -> None:
    out = cli(None, *args)
    assert (out.returncode, out.stderr) == (1, error + "\n")


def test_client_side_conflicts_and_summaries(tmp_path: Path) -> None:
    rm = cli(None, "run", "--rm", "--restart", "always", "busybox")
    assert (rm.returncode, rm.stderr) == (125, "conflicting options: cannot specify both --restart and --rm\n")
    start = cli(None, "start", "nosuch", "k")
    assert start.returncode == 1 and start.stderr.endswith("\nError: failed to start containers: nosuch, k\n")
    logout = cli(None, "logout", "https://reg.example:5000/v2/", env={"DOCKER_CONFIG": str(tmp_path)})
    assert (logout.returncode, logout.stdout) == (0, "Removing login credentials for reg.example:5000\n")


def test_rmi_force_of_a_missing_image_is_no_failure(daemon: _Daemon) -> None:
    daemon.routes[("DELETE", "/images/nosuch")] = (404, {"message": "No such image: nosuch:latest"})
    daemon.routes[("DELETE", "/images/used")] = (409, {"message": "conflict: image is in use"})
    missing = cli(daemon, "rmi", "-f", "nosuch")
    assert (missing.returncode, missing.stderr) == (0, "Error response from daemon: No such image: nosuch:latest\n")
    assert cli(daemon, "rmi", "nosuch").returncode == 1
    assert cli(daemon, "rmi", "-f", "nosuch", "used").returncode == 1


def test_system_df_counts_build_cache_once(daemon: _Daemon) -> None:
    cache = [{"ID": "a" * 20, "Size": 1000, "Shared": False, "InUse": False},
             {"ID": "b" * 20, "Size": 1000, "Shared": True, "InUse": False},
             {"ID": "c" * 20, "Size": 500, "Shared": False, "InUse": True}]
    image = {"Id": "sha256:" + "d" * 64, "RepoTags": ["one:1", "two:2"], "RepoDigests": ["one@sha256:" + "e" * 64],
             "Created": 0, "Size": 10, "SharedSize": 0, "Containers": 0}
    daemon.routes[("GET", "/system/df")] = (200, {"BuildCache": cache, "Images": [image], "LayersSize": 10})
    out = cli(daemon, "system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}")
    assert out.stdout.splitlines()[-1] == "Build Cache 3 1 1.5kB 1kB", out.stderr
    verbose = cli(daemon, "system", "df", "-v", "--format",
                  "{{range .Images}}{{.ID}} {{.Repository}}:{{.Tag}} [{{.Digest}}];{{end}}")
    assert verbose.stdout == f"sha256:{'d' * 64} one:1 [];"


def test_output_formats_as_docker_prints_them(daemon: _Daemon) -> None:
    container = {"Id": "c1", "State": {"Running": True}, "HostConfig": {},
                 "Config": {"Labels": {"zz": "1", "aa": "2"}}}
    daemon.routes[("GET", "/containers/c1/json")] = (200, container)
    daemon.routes[("GET", "/images/i1/json")] = (200, {"Id": "sha256:i1", "RootFS": {"Type": "layers"}})
    daemon.routes[("GET", "/images/i1/history")] = (200, [{"Id": "sha256:i1", "Created": 0, "CreatedBy": "x",
                                                          "Size": 1, "Comment": ""}])
    assert cli(daemon, "inspect", "-f", "{{json .Config.Labels}}", "c1").stdout == '{"aa":"2","zz":"1"}\n'
    assert json.loads(cli(daemon, "inspect", "-f", "json", "c1").stdout) == [container]
    assert cli(daemon, "image", "inspect", "-f", "{{.VirtualSize}}", "i1").stdout == "0\n"
    assert cli(daemon, "history", "-H=false", "i1").stdout.split()[:6] == ["IMAGE", "CREATED", "AT", "CREATED", "BY",
                                                                            "SIZE"]
    logs = cli(daemon, "logs", "--since", "bogus", "c1")
    assert (logs.returncode, logs.stderr) == (
        1, 'invalid value for "since": failed to parse value as time or duration: "bogus"\n')


def test_stats_rows_marshal_sorted_and_table_alone_is_the_default(daemon: _Daemon) -> None:
    daemon.routes[("GET", "/containers/c1/stats")] = (200, {"id": "c1", "name": "/web"})
    keys = list(json.loads(cli(daemon, "stats", "--no-stream", "--format", "json", "c1").stdout))
    assert keys == sorted(keys) and "BlockIO" in keys
    table = cli(daemon, "stats", "--no-stream", "--format", "table", "c1").stdout
    assert table.split()[:3] == ["CONTAINER", "ID", "NAME"] and "web" in table
