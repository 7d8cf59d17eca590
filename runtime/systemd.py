"""Readiness for systemd (sd_notify(3)) without libsystemd: with Type=notify, units ordered after
pyruntimed.service (pyengined) start only once the runtime's socket answers."""
from __future__ import annotations

import os
import socket


_address: str | None = None


def claim() -> None:
    """Take NOTIFY_SOCKET out of the environment before anything is started: conmon and runc inherit it, and
    runc, finding it, would set up systemd notification for the container it starts."""
    global _address
    _address = os.environ.pop("NOTIFY_SOCKET", None) or _address


def notify(state: str) -> None:
    """Send READY=1 / STOPPING=1 to the socket systemd named (claim() must have run); a no-op without one."""
    address = _address
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(state.encode(), address)
