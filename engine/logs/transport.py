"""Sockets to the log servers the syslog and gelf drivers send to, and dial errors in dockerd's (Go's) words.

Synchronous: used from the forwarding threads, and from a worker thread when a container starts.
"""
from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import SplitResult, urlsplit

from engine.errors import InvalidArgument

CONNECT_TIMEOUT = 5.0
# What Go's net and url packages call the schemes a log address may have.
SCHEMES = ("tcp", "tcp+tls", "udp", "unix", "unixgram")


class DialError(OSError):
    """A connection that could not be made, worded as Go's net.Dial words it."""


def split(address: str, option: str) -> SplitResult:
    """A `proto://address` option, refused in dockerd's words when it is not one."""
    scheme = address.partition("://")[0]
    if "://" not in address or scheme not in SCHEMES:
        raise InvalidArgument(f"{option} should be in form proto://address, got {address}")
    try:
        url = urlsplit(address)
        url.port  # noqa: B018 - parsing the port is what refuses a bad one
    except ValueError as e:
        if "IPv6" in str(e):
            raise InvalidArgument(f"parse \"{address}\": missing ']' in host") from None
        raise InvalidArgument(f"parse \"{address}\": invalid port") from None
    return url


def host_port(netloc: str) -> tuple[str, int] | None:
    """Go's SplitHostPort: None when the port is missing."""
    host, sep, port = netloc.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.removeprefix("[").removesuffix("]"), int(port)


def _go_error(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def _dialed(target: Any) -> str:
    """The address as Go's dial errors name it: a host name resolved, an IPv6 address in brackets."""
    if isinstance(target, str):
        return target
    host, port = target[0], target[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect(network: str, address: str, tls: ssl.SSLContext | None = None) -> socket.socket:
    """A socket connected to `address` over `network` (tcp, tcp+tls, udp, unix or unixgram)."""
    if network in ("unix", "unixgram"):
        kind = socket.SOCK_STREAM if network == "unix" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_UNIX, kind)
        target: Any = address
    else:
        parsed = host_port(address)
        assert parsed is not None
        host, port = parsed
        kind = socket.SOCK_DGRAM if network == "udp" else socket.SOCK_STREAM
        net = "udp" if network == "udp" else "tcp"
        try:
            found = socket.getaddrinfo(host or "localhost", port, type=kind)[0]
        except socket.gaierror:
            raise DialError(f"dial {net}: lookup {host}: no such host") from None
        target = found[4]
        sock = socket.socket(found[0], kind)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(target)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=address.rpartition(":")[0].strip("[]") or None)
    except ssl.SSLError as e:
        sock.close()
        raise DialError(f"tls: {e.reason or e}") from None
    except OSError as e:
        sock.close()
        net = network.removesuffix("+tls")
        raise DialError(f"dial {net} {_dialed(target)}: connect: {_go_error(e)}") from None
    return sock
