"""Which daemon `pyengine` talks to and in which API version: -H, $PYENGINE_HOST, $DOCKER_HOST, the docker
CLI's contexts; GET /_ping's API-Version, capped at the CLI's own."""
from __future__ import annotations

import hashlib
import json
import socketserver
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.pyengine import hosts
from cli.pyengine.api import CLIError, Engine, TLSSettings
from tests.fixtures.serving import serving


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("PYENGINE_HOST", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                     "DOCKER_TLS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def _context(config: Path, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Metadata": {},
                                                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))


def test_host_precedence(docker_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hosts.endpoint(None, None).host == hosts.DEFAULT_HOST
    _context(docker_config, "remote", "unix:///run/remote.sock")
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    assert hosts.endpoint(None, None).host == "unix:///run/remote.sock"
    _context(docker_config, "other", "tcp://127.0.0.1:2375")
    monkeypatch.setenv("DOCKER_CONTEXT", "other")
    assert hosts.endpoint(None, None).host == "tcp://127.0.0.1:2375"
    assert hosts.endpoint(None, "default").host == hosts.DEFAULT_HOST
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/docker.sock")
    assert hosts.endpoint(None, None).host == "unix:///run/docker.sock"
    assert hosts.endpoint(None, "remote").host == "unix:///run/remote.sock"
    monkeypatch.setenv("PYENGINE_HOST", "unix:///run/mine.sock")
    assert hosts.endpoint(None, None).host == "unix:///run/mine.sock"
    assert hosts.endpoint("unix:///flag.sock", None).host == "unix:///flag.sock"
    with pytest.raises(CLIError, match="cannot specify both --host and --context"):
        hosts.endpoint("unix:///flag.sock", "remote")
    with pytest.raises(CLIError, match='unable to resolve docker endpoint: context "missing": context not found'):
        hosts.endpoint(None, "missing")


def test_saved_formats_come_from_the_config_file(docker_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hosts.config_value("psFormat") is None
    (docker_config / "config.json").write_text(json.dumps({"psFormat": "table {{.Names}}"}))
    assert hosts.config_value("psFormat") == "table {{.Names}}"
    (docker_config / "config.json").write_text("{not json")
    assert hosts.config_value("psFormat") is None and hosts.endpoint(None, None).host == hosts.DEFAULT_HOST
    assert "WARNING: Error loading config file: " in capsys.readouterr().err


class _Daemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    api_version: str | None = None
    paths: list[str]


class _Handler(socketserver.StreamRequestHandler):
    server: _Daemon

    def handle(self) -> None:
        path = self.rfile.readline().split()[1].decode()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        self.server.paths.append(path)
        header = f"API-Version: {self.server.api_version}\r\n" if self.server.api_version else ""
        body = b"OK" if path == "/_ping" else b"{}"
        self.wfile.write(f"HTTP/1.1 200 OK\r\n{header}Content-Length: {len(body)}\r\n\r\n".encode() + body)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[_Daemon]:
    server = _Daemon(str(tmp_path / "d.sock"), _Handler)
    server.paths = []
    with serving(server):
        yield server


@pytest.mark.parametrize(("theirs", "spoken"), [("1.41", "1.41"), ("1.50", "1.50"), ("1.52", "1.50"),
                                                (None, "1.24")])
def test_api_version_is_negotiated(daemon: _Daemon, theirs: str | None, spoken: str) -> None:
    daemon.api_version = theirs
    e = Engine(f"unix://{daemon.server_address}")
    assert e.get("/info") == {} and e.get("/version") == {}
    assert daemon.paths == ["/_ping", f"/v{spoken}/info", f"/v{spoken}/version"]


def test_tls_follows_the_docker_cli_s_options_and_environment(docker_config: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert hosts.endpoint("tcp://h:2376", None).tls is None
    monkeypatch.setenv("HOME", str(docker_config))
    monkeypatch.delenv("DOCKER_CONFIG")
    home = docker_config / ".docker"
    home.mkdir()
    (home / "cert.pem").write_text("c")
    # --tls alone: TLS without verification; files not named come from the config directory ($DOCKER_CONFIG,
    # else ~/.docker), cert and key only if there.
    assert hosts.endpoint("tcp://h:2376", None, hosts.TLSOptions(tls=True)).tls == TLSSettings(
        ca=str(home / "ca.pem"), cert=str(home / "cert.pem"), key=None, verify=False)
    monkeypatch.setenv("DOCKER_TLS", "1")
    assert hosts.endpoint("tcp://h:2376", None).tls == TLSSettings(
        ca=str(home / "ca.pem"), cert=str(home / "cert.pem"), key=None, verify=False)
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", "/certs")
    assert hosts.endpoint("tcp://h:2376", None, hosts.TLSOptions(key="/k.pem")).tls == TLSSettings(
        ca="/certs/ca.pem", cert=None, key="/k.pem", verify=True)
    monkeypatch.delenv("DOCKER_CERT_PATH")
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    assert hosts.endpoint("tcp://h:2376", None).tls == TLSSettings(
        ca=str(docker_config / "ca.pem"), cert=None, key=None, verify=True)
    # A context brings its own TLS material; the options are the default context's.
    _context(docker_config, "plain", "tcp://h:1")
    assert hosts.endpoint(None, "plain").tls is None
    _context(docker_config, "secure", "tcp://h:2")
    tls_dir = docker_config / "contexts" / "tls" / hashlib.sha256(b"secure").hexdigest() / "docker"
    tls_dir.mkdir(parents=True)
    (tls_dir / "ca.pem").write_text("ca")
    assert hosts.endpoint(None, "secure").tls == TLSSettings(ca=str(tls_dir / "ca.pem"), verify=True)


def test_hosts_other_than_unix_tcp_and_ssh_are_refused() -> None:
    with pytest.raises(CLIError, match="unsupported host"):
        Engine("npipe:////./pipe/docker_engine")
    with pytest.raises(CLIError, match="extra path after the host"):
        Engine("ssh://me@host/path")
    with pytest.raises(CLIError, match="tcp://HOST"):
        Engine("tcp://:2375")
    # docker's default ports.
    assert Engine("tcp://somehost")._address == ("somehost", 2375)
    assert Engine("tcp://somehost", TLSSettings(verify=False))._address == ("somehost", 2376)
    assert Engine("tcp://[::1]")._address == ("::1", 2375)
