"""Who holds a host port: the process behind "address already in use".

dockerd stops at the errno. The kernel lists every socket of this network namespace in /proc/net/{tcp,udp}[6]
with its local address and inode, and every process's descriptors link to "socket:[inode]": joining the two
names the holder, as `ss -p` does. A port held from another network namespace, or by a socket no process
owns any more, is not in these tables and is said so.
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.errors import Conflict

_T = TypeVar("_T")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


class PortInUse(Conflict):
    """The host refused the bind: someone else listens there."""

    def __init__(self, message: str, proto: str, ip: str, port: int) -> None:
        super().__init__(message)
        self.proto, self.ip, self.port = proto, ip, port


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    address: str


async def explained(allocate: Callable[[], _T]) -> _T:
    """allocate(), with a refused bind explained (the /proc walk runs only then, off the loop)."""
    try:
        return allocate()
    except PortInUse as e:
        raise await explain(e) from None


async def explain(e: PortInUse) -> Conflict:
    """The same refusal, with the holding process named after dockerd's words."""
    holders = await asyncio.to_thread(find, e.proto, e.port)
    if not holders:
        return Conflict(f"{e.message}: no process of this host's network namespace holds {e.proto} port {e.port} "
                        f"(a socket in another namespace, or one its process left behind, may)")
    named = "; ".join(f"process {h.pid} ({h.command}) listens on {h.address}" for h in holders[:3])
    return Conflict(f"{e.message}: {named}; stop it or publish another host port (-p OTHER:{e.port})")


def find(proto: str, port: int) -> list[Holder]:
    """Processes with a socket bound to `port` (listening, for TCP), by pid."""
    inodes: dict[str, str] = {}
    for name in (proto, proto + "6"):
        inodes.update(_bound(f"/proc/net/{name}", port, tcp=proto == "tcp"))
    if not inodes:
        return []
    holders: dict[int, Holder] = {}
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and (address := inodes.get(link[8:-1])) is not None:
                holders.setdefault(pid, Holder(pid, _command(pid), address))
                break
    return sorted(holders.values(), key=lambda h: h.pid)


def _bound(table: str, port: int, *, tcp: bool) -> dict[str, str]:
    """inode -> "address:port" of the sockets bound to `port` in one /proc/net table."""
    try:
        with open(table) as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, state, inode = fields[1], fields[3], fields[9]
        hex_ip, _, hex_port = local.partition(":")
        if int(hex_port, 16) != port or (tcp and state != _LISTEN) or inode == "0":
            continue
        found[inode] = f"{_address(hex_ip)}:{port}"
    return found


def _address(hex_ip: str) -> str:
    # The kernel prints the address as host-order 32-bit words.
    raw = bytes.fromhex(hex_ip)
    swapped = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(swapped)
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().rstrip(b"\0").split(b"\0")
        text = " ".join(a.decode(errors="replace") for a in args if a)
    except OSError:
        text = ""
    if not text:
        try:
            with open(f"/proc/{pid}/comm") as f:
                text = f.read().strip()
        except OSError:
            text = "?"
    return text if len(text) <= 120 else text[:117] + "..."
