"""Published ports: Docker's port specs parsed, host ports allocated without a proxy process.

The allocation table lives in memory and is rebuilt from the sandboxes of running containers when
the engine starts, so a port is held exactly as long as its container runs: no stale "port is
already allocated" after a crash.
"""
from __future__ import annotations

import errno
import ipaddress
import itertools
import socket
from collections.abc import Iterable
from typing import Any

from engine.errors import Conflict, InvalidArgument
from engine.networks.model import PublishedPort
from engine.networks.port_owner import PortInUse

# Where a port published without a host port goes: the host's own range for ephemeral ports, as dockerd's
# port allocator reads it (and its fallback when that cannot be read).
_PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
_FALLBACK = range(49153, 65536)


def ephemeral_ports(source: str = _PORT_RANGE) -> range:
    try:
        with open(source) as f:
            first, last = (int(word) for word in f.read().split())
    except (OSError, ValueError):
        return _FALLBACK
    return range(first, last + 1) if 0 < first <= last <= 65535 else _FALLBACK


def _port_proto(key: str) -> tuple[int, int, str]:
    """"80/tcp", "8000-8010/udp" → (first, count, proto)."""
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    first, count = _range(port)
    return first, count, proto


def _range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise InvalidArgument(f'invalid port specification: "{text}"') from None
    if not (1 <= a <= 65535 and 1 <= b <= 65535) or b < a:
        raise InvalidArgument(f'invalid port specification: "{text}"')
    return a, b - a + 1


def requested(exposed: Iterable[str], bindings: dict[str, Any] | None, publish_all: bool) -> list[dict[str, Any]]:
    """What the container asks for: one entry per container port range and host binding, with neighbouring
    fixed bindings joined into ranges."""
    out: list[dict[str, Any]] = []
    for key, binds in (bindings or {}).items():
        first, count, proto = _port_proto(key)
        for b in binds or [{}]:
            b = b or {}
            host_ip = str(b.get("HostIp") or "")
            if host_ip:
                try:
                    ipaddress.IPv4Address(host_ip)
                except ValueError:
                    raise InvalidArgument(f"invalid host IP {host_ip!r} for port {key}") from None
            host_port = str(b.get("HostPort") or "")
            host_first, host_count = _range(host_port) if host_port else (0, count)
            # Equal ranges map port to port; one container port takes any free host port of a range.
            if host_port and host_count != count and count != 1:
                raise InvalidArgument(f"invalid port range: {host_port}:{key}: the ranges differ in size")
            _append(out, {"ip": host_ip, "host": host_first, "host_count": host_count, "port": first,
                          "count": count, "proto": proto})
    exposed_ranges = [_port_proto(key) for key in exposed]  # checked even when not published
    if publish_all:
        bound = {(e["port"], e["proto"]) for e in out}
        for first, count, proto in exposed_ranges:
            for p in range(first, first + count):
                if (p, proto) not in bound:
                    out.append({"ip": "", "host": 0, "host_count": 1, "port": p, "count": 1, "proto": proto})
    return out


def _append(out: list[dict[str, Any]], w: dict[str, Any]) -> None:
    """Adds `w`, or extends the last entry when `w` continues it port for port on both sides.

    The docker CLI sends `-p 20000-20099:20000-20099` as a hundred single ports; as one range the network stack
    sets up one forwarding rule for them instead of a hundred.
    """
    last = out[-1] if out else None
    if (last is not None and w["host"] and last["host"] and w["host_count"] == w["count"]
            and last["host_count"] == last["count"] and (w["ip"], w["proto"]) == (last["ip"], last["proto"])
            and w["port"] == last["port"] + last["count"] and w["host"] == last["host"] + last["count"]):
        last["count"] += w["count"]
        last["host_count"] += w["count"]
    else:
        out.append(w)


class PortTable:
    def __init__(self) -> None:
        # (proto, port) -> every (host_ip, container id) holding it: specific addresses may share a port.
        self._held: dict[tuple[str, int], list[tuple[str, str]]] = {}
        self._ephemeral = ephemeral_ports()
        # dockerd's allocator goes round the range: a restarted container gets a new port, not its last one.
        self._after = self._ephemeral.start - 1

    def holder(self, proto: str, ip: str, port: int) -> str | None:
        # 0.0.0.0 clashes with every address; two specific addresses only with themselves.
        return next((cid for held_ip, cid in self._held.get((proto, port), [])
                     if not held_ip or not ip or held_ip == ip), None)

    def hold(self, cid: str, mappings: Iterable[PublishedPort]) -> None:
        for m in mappings:
            for i in range(m.count):
                self._held.setdefault((m.protocol, m.host_port + i), []).append((m.host_ip, cid))

    def release(self, cid: str) -> None:
        for key in list(self._held):
            kept = [h for h in self._held[key] if h[1] != cid]
            if kept:
                self._held[key] = kept
            else:
                del self._held[key]

    def allocate(self, cid: str, wanted: list[dict[str, Any]], name_of: Any) -> list[PublishedPort]:
        """Host ports for `wanted`, held for `cid`; Conflict names the container holding a port."""
        mappings: list[PublishedPort] = []
        try:
            for w in wanted:
                if w["host"]:
                    if w["host_count"] == w["count"]:
                        mappings.append(self._take(cid, w, w["host"], w["count"], name_of))
                    else:
                        mappings.append(self._take_one_of(cid, w, range(w["host"], w["host"] + w["host_count"]),
                                                          name_of))
                else:
                    m = self._take_one_of(cid, w, self._ephemeral, name_of, count=w["count"], after=self._after)
                    self._after = m.host_port + m.count - 1
                    mappings.append(m)
        except BaseException:
            self.release(cid)
            raise
        return mappings

    def _take(self, cid: str, w: dict[str, Any], first: int, count: int, name_of: Any) -> PublishedPort:
        for port in range(first, first + count):
            holder = self.holder(w["proto"], w["ip"], port)
            if holder is not None:
                raise Conflict(f"Bind for {w['ip'] or '0.0.0.0'}:{port} failed: port is already allocated "
                               f"(by container {name_of(holder)})")
            if not _free_on_host(w["proto"], w["ip"], port):
                raise PortInUse(f"Bind for {w['ip'] or '0.0.0.0'}:{port} failed: address already in use",
                                w["proto"], w["ip"], port)
        m = PublishedPort(host_ip=w["ip"], host_port=first, container_port=w["port"], protocol=w["proto"],
                          count=count)
        self.hold(cid, [m])
        return m

    def _take_one_of(self, cid: str, w: dict[str, Any], candidates: range, name_of: Any,
                     count: int = 1, after: int | None = None) -> PublishedPort:
        """The first free port of `candidates`, or with `after` the first past it, round the range."""
        order: Iterable[int] = candidates
        if after is not None and candidates.start <= after < candidates[-1]:
            order = itertools.chain(range(after + 1, candidates.stop), range(candidates.start, after + 1))
        for first in order:
            if first + count - 1 > candidates[-1]:
                continue
            if all(self.holder(w["proto"], w["ip"], p) is None and _free_on_host(w["proto"], w["ip"], p)
                   for p in range(first, first + count)):
                return self._take(cid, w, first, count, name_of)
        raise Conflict(f"no free host port in {candidates.start}-{candidates.stop - 1} for "
                       f"{w['port']}/{w['proto']}")


def _free_on_host(proto: str, ip: str, port: int) -> bool:
    """Whether some other program already listens there (no proxy of ours would ever bind it)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        # A socket in TIME_WAIT is no owner; a listening one is.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip or "0.0.0.0", port))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                # No address of this host: nothing could ever reach the port there.
                raise InvalidArgument(f"Error starting userland proxy: listen {proto}4 {ip}:{port}: bind: "
                                      "cannot assign requested address") from None
            return e.errno not in (errno.EADDRINUSE, errno.EACCES)
    return True


def docker_ports(mappings: Iterable[PublishedPort], exposed: Iterable[str]) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed port, with its host bindings or null."""
    out: dict[str, Any] = {}
    for key in exposed:
        first, count, proto = _port_proto(key)
        for p in range(first, first + count):
            out.setdefault(f"{p}/{proto}", None)
    for m in mappings:
        for i in range(m.count):
            key = f"{m.container_port + i}/{m.protocol}"
            out[key] = (out.get(key) or []) + [{"HostIp": m.host_ip or "0.0.0.0", "HostPort": str(m.host_port + i)}]
    return out
