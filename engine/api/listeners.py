"""The engine's API listeners, as dockerd's `-H`: unix://PATH, tcp://HOST:PORT, fd:// and fd://N.

tcp hosts (and sockets systemd passes that are TCP) are served with TLS when `--tls` or
`--tlsverify` is on; without it they are refused unless `--insecure-tcp` says the operator
means it, since a plain TCP API gives root on this host to whoever reaches the port.
"""
from __future__ import annotations

import grp
import logging
import os
import socket
import ssl
from pathlib import Path

from aiohttp import web

from engine import systemd
from engine.api.tls import server_context
from engine.api.tls_transport import TLSSite
from engine.config import Config

log = logging.getLogger("engine.api.listeners")

DEFAULT_TCP_PORT = 2375


class ListenError(Exception):
    pass


def tcp_address(host: str) -> tuple[str, int]:
    """tcp://HOST:PORT as dockerd reads it: HOST defaults to loopback, PORT to 2375; an IPv6 HOST in brackets."""
    hostport = host[len("tcp://"):].rstrip("/")
    if hostport.startswith("["):
        h, _, rest = hostport[1:].partition("]")
        p = rest[1:] if rest.startswith(":") else rest
    else:
        h, _, p = hostport.partition(":")
    try:
        return h or "127.0.0.1", int(p) if p else DEFAULT_TCP_PORT
    except ValueError:
        raise ListenError(f"{host}: invalid port {p!r}") from None


def _gid(group: str) -> int:
    """A group by name or number, as dockerd's `group` takes it."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ListenError(f"group {group} not found") from None


def _unix(path: str, cfg: Config) -> socket.socket:
    gid = _gid(cfg.socket_group) if cfg.socket_group else None  # before the socket exists: none is left behind
    Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    if Path(path).is_socket():
        Path(path).unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    if gid is not None:
        os.chown(path, 0, gid)
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _refuse_plain(where: str, cfg: Config) -> None:
    if not cfg.tls_insecure_tcp:
        raise ListenError(f"refusing to serve {where} without TLS: pass --tlsverify with --tlscacert, --tlscert "
                          "and --tlskey, or --insecure-tcp (\"insecure-tcp\": true) to serve it in the clear")


def check(cfg: Config) -> ssl.SSLContext | None:
    """What can be known before binding: the TLS files load, and no tcp host would be plain by accident.
    Returns the TLS context for tcp hosts (None: TLS off)."""
    try:
        tls = server_context(cfg)
    except ValueError as e:
        raise ListenError(str(e)) from None
    for host in cfg.hosts:
        if host.startswith("tcp://"):
            tcp_address(host)
            if tls is None:
                _refuse_plain(host, cfg)
    return tls


def _site(runner: web.AppRunner, sock: socket.socket, where: str, tls: ssl.SSLContext | None,
          cfg: Config) -> web.BaseSite:
    if sock.family == socket.AF_UNIX:
        return web.SockSite(runner, sock)
    if tls is not None:
        return TLSSite(runner, sock, tls)
    _refuse_plain(where, cfg)
    log.warning("listening on %s without TLS: anyone who can reach it controls this host", where)
    return web.SockSite(runner, sock)


def _sockets(host: str, cfg: Config) -> list[socket.socket]:
    scheme, sep, rest = host.partition("://")
    if not sep:
        raise ListenError(f"unsupported host {host!r} (use unix:///path, tcp://host:port or fd://)")
    if scheme == "unix":
        return [_unix(rest, cfg)]
    if scheme == "tcp":
        h, p = tcp_address(host)
        try:
            return [socket.create_server((h, p), backlog=1024)]
        except OSError as e:
            raise ListenError(f"{host}: {e.strerror or e}") from None
    if scheme == "fd":
        try:
            return systemd.listen_fds(rest)
        except systemd.ActivationError as e:
            raise ListenError(str(e)) from None
    raise ListenError(f"unsupported host {host!r} (use unix:///path, tcp://host:port or fd://)")


async def listen(runner: web.AppRunner, cfg: Config) -> list[web.BaseSite]:
    """Start a site for every socket `cfg.hosts` names; ListenError says which host cannot be served."""
    tls = check(cfg)
    sites = []
    for host in cfg.hosts:
        for sock in _sockets(host, cfg):
            where = host if not host.startswith("fd://") else f"{host} ({sock.getsockname()})"
            site = _site(runner, sock, where, tls, cfg)
            await site.start()
            sites.append(site)
            log.info("API listening on %s%s", where, " (TLS)" if isinstance(site, TLSSite) else "")
    return sites
