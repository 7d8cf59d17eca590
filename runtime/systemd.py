"""Readiness for systemd (sd_notify(3)) without libsystemd: with Type=notify, units ordered after
pyruntimed.service (pyengined) start only once the runtime's socket answers."""
from __future__ import annotations

import os
import socket


def notify(state: str) -> None:
    """Send READY=1 / STOPPING=1 to the socket in NOTIFY_SOCKET; a no-op when systemd did not start us."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(state.encode(), address)
