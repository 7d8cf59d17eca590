"""The engine's -H parsing, its TLS and host settings, and socket activation's fds (engine/api/listeners.py,
engine/api/tls.py, engine/systemd.py, engine/config.py)."""
from __future__ import annotations

import fcntl
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from engine import config as config_mod
from engine.api import listeners
from engine.api.tls_transport import TLSSite
from tests.fixtures.certs import issue, make_ca


@pytest.mark.parametrize("host,address", [
    ("tcp://127.0.0.1:2376", ("127.0.0.1", 2376)),
    ("tcp://0.0.0.0", ("0.0.0.0", 2375)),
    ("tcp://:2376", ("127.0.0.1", 2376)),
    ("tcp://[::1]:2376", ("::1", 2376)),
    ("tcp://[::]", ("::", 2375)),
])
def test_tcp_hosts_read_as_dockerd_reads_them(host: str, address: tuple[str, int]) -> None:
    assert listeners.tcp_address(host) == address


def test_a_bad_port_is_refused() -> None:
    with pytest.raises(listeners.ListenError, match="invalid port 'x'"):
        listeners.tcp_address("tcp://127.0.0.1:x")


def _cfg(**kw: object) -> config_mod.Config:
    return config_mod.Config.model_validate(kw)


def test_plain_tcp_needs_the_insecure_flag() -> None:
    with pytest.raises(listeners.ListenError, match="--insecure-tcp"):
        listeners.check(_cfg(hosts=["unix:///x.sock", "tcp://127.0.0.1:2375"]))
    assert listeners.check(_cfg(hosts=["tcp://127.0.0.1:2375"], **{"insecure-tcp": True})) is None


def test_tls_settings_load_and_name_what_is_wrong(tmp_path: Path) -> None:
    server = issue(make_ca("ca"), tmp_path / "server", "pyengined", server=True)
    paths = {"tlscacert": str(server / "ca.pem"), "tlscert": str(server / "cert.pem"),
             "tlskey": str(server / "key.pem")}
    ctx = listeners.check(_cfg(hosts=["tcp://127.0.0.1:2376"], tlsverify=True, **paths))
    assert ctx is not None and ctx.verify_mode.name == "CERT_REQUIRED"
    ctx = listeners.check(_cfg(hosts=["tcp://127.0.0.1:2376"], tls=True, tlscert=paths["tlscert"],
                               tlskey=paths["tlskey"]))
    assert ctx is not None and ctx.verify_mode.name == "CERT_NONE"
    with pytest.raises(listeners.ListenError, match=r"--tlscacert .*nope\.pem"):
        listeners.check(_cfg(tlsverify=True, **{**paths, "tlscacert": str(tmp_path / "nope.pem")}))
    with pytest.raises(listeners.ListenError, match="only used with --tlsverify"):
        listeners.check(_cfg(tls=True, **paths))
    with pytest.raises(listeners.ListenError, match="--tlskey"):
        listeners.check(_cfg(tls=True, tlscert=paths["tlscert"], tlskey=str(tmp_path / "none")))


def test_unset_certificate_paths_are_dockerds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    issue(make_ca("ca"), tmp_path, "pyengined", server=True)
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    assert listeners.check(_cfg(hosts=["tcp://127.0.0.1:2376"], tlsverify=True)) is not None


def test_hosts_and_tls_in_both_the_file_and_flags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"hosts": ["tcp://127.0.0.1:2376"], "tlsverify": true}')
    with pytest.raises(ValueError, match=r"hosts \(from flag: \['fd://'\], from file"):
        config_mod.load(str(path), {"hosts": ["fd://"]})
    cfg = config_mod.load(str(path), {"hosts": None, "tlsverify": None})
    assert cfg.hosts == ["tcp://127.0.0.1:2376"] and cfg.tlsverify


_ACTIVATED = """
import os, socket, sys
from engine import systemd
systemd.claim()
socks = systemd.listen_fds(sys.argv[1])
print([s.fileno() for s in socks], [s.family.name for s in socks], os.environ.get("LISTEN_FDS"),
      os.environ.get("NOTIFY_SOCKET"), os.get_inheritable(3))
"""


def _activated(spec: str, socks: list[socket.socket], pid_matches: bool = True) -> subprocess.CompletedProcess[str]:
    """A child started as systemd starts a socket-activated service: the sockets at fds 3.., LISTEN_PID its own."""
    fds = [s.fileno() for s in socks]

    def as_systemd() -> None:
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
        os.environ.update(LISTEN_FDS=str(len(fds)), LISTEN_PID=str(os.getpid() + (0 if pid_matches else 1)),
                          NOTIFY_SOCKET="@x")

    return subprocess.run([sys.executable, "-c", _ACTIVATED, spec], preexec_fn=as_systemd, close_fds=False,
                          capture_output=True, text=True, timeout=60)


def test_socket_activation_takes_the_passed_sockets(tmp_path: Path) -> None:
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "s"))
    unix.listen()
    tcp = socket.create_server(("127.0.0.1", 0))
    with unix, tcp:
        out = _activated("", [unix, tcp])
        assert out.stdout.strip() == "[3, 4] ['AF_UNIX', 'AF_INET'] None None False", out.stderr
        assert _activated("4", [unix, tcp]).stdout.startswith("[4] ['AF_INET']")
        assert "systemd passed fds 3..4" in _activated("7", [unix, tcp]).stderr
        assert "no sockets found via socket activation" in _activated("", [unix], pid_matches=False).stderr


async def test_tls_without_verify_serves_clients_without_certificates(tmp_path: Path) -> None:
    """--tls alone: the server proves who it is; clients need no certificate (the -H fd:// path for a TCP
    socket, the same site a tcp:// host gets)."""
    server = issue(make_ca("ca"), tmp_path / "server", "pyengined", server=True)
    cfg = _cfg(hosts=["tcp://127.0.0.1:0"], tls=True, tlscert=str(server / "cert.pem"),
               tlskey=str(server / "key.pem"))
    context = listeners.check(cfg)
    assert context is not None

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/_ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        await TLSSite(runner, sock, context).start()
        client_ctx = ssl.create_default_context(cafile=str(server / "ca.pem"))
        async with aiohttp.ClientSession() as session:
            url = f"https://127.0.0.1:{sock.getsockname()[1]}/_ping"
            async with session.get(url, ssl=client_ctx) as r:
                assert (r.status, await r.text()) == (200, "OK")
    finally:
        await runner.cleanup()
