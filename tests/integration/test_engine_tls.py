"""Remote access with mutual TLS, as dockerd's `-H tcp://… --tlsverify`: the docker CLI (DOCKER_HOST,
DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) and the Docker SDK get in with a client certificate the CA signed,
hijacked attach and exec included; a client without one, or with one from another CA, is refused at the
handshake. Plain TCP is refused unless the operator says --insecure-tcp."""
from __future__ import annotations

import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.fixtures.certs import CA, issue, make_ca
from tests.fixtures.daemons import BIN, EngineDaemon, mirrored_engine
from tests.fixtures._net import LOOPBACK, free_port
from tests.integration.test_engine_attach import Terminal


class TLSEngine:
    def __init__(self, engine: EngineDaemon, port: int, certs: Path, ca: CA) -> None:
        self.engine = engine
        self.port = port
        self.certs = certs
        self.ca = ca

    def env(self, cert_dir: Path) -> dict[str, str]:
        return dict(os.environ, DOCKER_HOST=f"tcp://{LOOPBACK}:{self.port}", DOCKER_TLS_VERIFY="1",
                    DOCKER_CERT_PATH=str(cert_dir))

    def docker(self, *args: str, cert_dir: Path | None = None, input: str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], env=self.env(cert_dir or self.certs / "client"), input=input,
                              capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, input: str | None = None) -> str:
        out = self.docker(*args, input=input)
        assert out.returncode == 0, f"docker {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out.stdout


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[TLSEngine]:
    certs = tmp_path_factory.mktemp("certs")
    ca = make_ca("pyengine test CA")
    server = issue(ca, certs / "server", "pyengined", server=True)
    issue(ca, certs / "client", "client", server=False)
    # Another CA's client: it trusts our CA for the server, but its own certificate is the stranger's.
    stranger = issue(make_ca("another CA"), certs / "stranger", "stranger", server=False)
    (stranger / "ca.pem").write_bytes(ca.pem())
    port = free_port()
    args = ["-H", f"tcp://{LOOPBACK}:{port}", "--tlsverify", "--tlscacert", str(server / "ca.pem"),
            "--tlscert", str(server / "cert.pem"), "--tlskey", str(server / "key.pem")]
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host, extra_args=args) as e:
        yield TLSEngine(e, port, certs, ca)


@pytest.fixture(autouse=True)
def no_leftovers(tls: TLSEngine) -> Iterator[None]:
    yield
    tls.engine.reset()


def test_the_cli_talks_to_the_engine_over_mutual_tls(tls: TLSEngine) -> None:
    assert tls.ok("version", "--format", "{{.Server.Version}}").strip()
    assert tls.ok("run", "--rm", "busybox", "echo", "hello over tls") == "hello over tls\n"
    # Stdin to the container, then the CLI's close_notify ends it; the output still comes back.
    assert tls.ok("run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo end", input="piped\n") == "piped\nend\n"


def test_attach_and_exec_hijack_over_tls(tls: TLSEngine) -> None:
    cid = tls.ok("run", "-d", "-it", "--network", "none", "busybox", "sh").strip()
    assert tls.ok("exec", cid, "echo", "from exec") == "from exec\n"
    assert tls.ok("exec", "-i", cid, "cat", input="exec stdin\n") == "exec stdin\n"
    attach = Terminal(tls.env(tls.certs / "client"), "attach", cid)
    try:
        attach.type(b"echo $((6*7))-over-tls\r")
        attach.expect(b"42-over-tls\r\n")
        attach.type(b"exit 3\r")
        assert attach.wait() == 3, attach.out
    finally:
        attach.close()


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets these variables replace the CA the SDK gives it (psf/requests#3829); this host sets them."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def test_large_streams_both_ways_over_tls(tls: TLSEngine) -> None:
    """Megabytes through a hijacked stream each way: TLS records, flow control and the final close_notify."""
    size = 8 * 1024 * 1024
    assert tls.ok("run", "--rm", "busybox", "sh", "-c", f"head -c {size} /dev/zero | tr '\\0' x") == "x" * size
    assert tls.ok("run", "--rm", "-i", "busybox", "wc", "-c", input="y" * size).strip() == str(size)


def _sdk(tls: TLSEngine, cert_dir: Path, *, client_cert: bool = True) -> docker.DockerClient:
    config = docker.tls.TLSConfig(
        client_cert=(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem")) if client_cert else None,
        ca_cert=str(tls.certs / "client" / "ca.pem"), verify=True)
    return docker.DockerClient(base_url=f"https://{LOOPBACK}:{tls.port}", tls=config)


def test_the_sdk_talks_to_the_engine_over_mutual_tls(tls: TLSEngine, sdk_env: None) -> None:
    client = _sdk(tls, tls.certs / "client")
    try:
        assert client.version()["ApiVersion"]
        assert client.containers.run("busybox", ["echo", "sdk over tls"], remove=True) == b"sdk over tls\n"
        c = client.containers.run("busybox", ["sleep", "60"], detach=True)
        assert c.exec_run(["echo", "sdk exec"]).output == b"sdk exec\n"
    finally:
        client.close()


def _refused(context: ssl.SSLContext, port: int) -> str:
    """Handshake, then ask for /_ping: the server must answer with a TLS alert, never with HTTP. Under TLS 1.3
    the client's side of the handshake completes before the server has checked its certificate, so the alert may
    arrive at the first read instead."""
    with socket.create_connection((LOOPBACK, port)) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=LOOPBACK) as s:
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                data = s.recv(1024)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            return str(e)
    raise AssertionError(f"the server answered: {data!r}")


def _client_context(tls: TLSEngine, cert_dir: Path | None, *, tls12: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(tls.certs / "client" / "ca.pem"))
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert_dir is not None:
        ctx.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
    return ctx


def test_a_client_without_a_certificate_is_refused_at_the_handshake(tls: TLSEngine, sdk_env: None) -> None:
    # TLS 1.2: the server asks for the certificate inside the handshake, so the handshake itself fails.
    with socket.create_connection((LOOPBACK, tls.port)) as raw:
        with pytest.raises(ssl.SSLError):
            _client_context(tls, None, tls12=True).wrap_socket(raw, server_hostname=LOOPBACK)
    assert "CERTIFICATE_REQUIRED" in _refused(_client_context(tls, None), tls.port)
    with pytest.raises(docker.errors.DockerException, match="CERTIFICATE_REQUIRED"):
        _sdk(tls, tls.certs / "client", client_cert=False)
    assert "TLS handshake error from 127.0.0.1" in tls.engine.log()


def test_a_client_certificate_from_another_ca_is_refused(tls: TLSEngine, sdk_env: None) -> None:
    stranger = tls.certs / "stranger"
    with socket.create_connection((LOOPBACK, tls.port)) as raw:
        with pytest.raises(ssl.SSLError):
            _client_context(tls, stranger, tls12=True).wrap_socket(raw, server_hostname=LOOPBACK)
    assert "UNKNOWN_CA" in _refused(_client_context(tls, stranger), tls.port)
    out = tls.docker("version", "--format", "{{.Server.Version}}", cert_dir=stranger)
    assert out.returncode != 0 and "unknown certificate authority" in out.stderr, out.stderr
    with pytest.raises(docker.errors.DockerException, match="UNKNOWN_CA"):
        _sdk(tls, stranger)


def test_the_unix_socket_stays_plain_beside_the_tls_host(tls: TLSEngine) -> None:
    out = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=tls.engine.env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_plain_tcp_is_refused_without_the_insecure_flag(tmp_path: Path) -> None:
    out = subprocess.run([str(BIN / "pyengined"), "-H", f"tcp://{LOOPBACK}:{free_port()}", "--data-root",
                          str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec"), "--runtime-address",
                          str(tmp_path / "none.sock")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--insecure-tcp" in out.stderr and "--tlsverify" in out.stderr, out.stderr


def test_tls_settings_in_daemon_json_and_flags_conflict(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text('{"tlsverify": true, "hosts": ["tcp://127.0.0.1:2376"]}')
    out = subprocess.run([str(BIN / "pyengined"), "--config-file", str(config), "-H", "unix:///nonexistent.sock",
                          "--tlsverify"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "specified both as a flag and in the configuration file" in out.stderr
    assert "hosts" in out.stderr and "tlsverify" in out.stderr, out.stderr
