"""What systemd hands a service and expects back, without libsystemd.

Socket activation (sd_listen_fds(3)): systemd opens the listening sockets of
pyengined.socket itself, so clients can connect before the daemon runs and while it
restarts; it starts the service with the sockets as fds 3, 4, ... and says how many in
LISTEN_FDS, for the process LISTEN_PID. `-H fd://` takes them all, `-H fd://N` the one
at fd N, as dockerd does.

Readiness (sd_notify(3)): with Type=notify, systemd orders the units after this one
only once the daemon sends READY=1 on the datagram socket named in NOTIFY_SOCKET.
"""
from __future__ import annotations

import os
import socket

SD_LISTEN_FDS_START = 3


class ActivationError(Exception):
    pass


def _inherited() -> list[socket.socket]:
    """The sockets systemd passed to this process, taken once: the variables are unset so that nothing this
    process starts (conmon, runc, the containers) believes they were meant for it, and the fds are close-on-exec."""
    pid, count = os.environ.pop("LISTEN_PID", ""), os.environ.pop("LISTEN_FDS", "")
    os.environ.pop("LISTEN_FDNAMES", None)
    if pid != str(os.getpid()) or not count.isdigit():
        return []
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        socks.append(sock)
    return socks


_taken: list[socket.socket] = []
_notify_address: str | None = None


def claim() -> None:
    """Take what systemd passed out of the environment before anything is started: every child inherits it,
    and runc, finding NOTIFY_SOCKET, would set up systemd notification for the container it starts."""
    global _taken, _notify_address
    _taken = _taken or _inherited()
    _notify_address = os.environ.pop("NOTIFY_SOCKET", None) or _notify_address


def listen_fds(spec: str) -> list[socket.socket]:
    """The sockets `fd://` (all of them) or `fd://N` (fd N) names (claim() must have run)."""
    if not _taken:
        raise ActivationError(f"{spec}: no sockets found via socket activation: make sure the service was "
                              "started by systemd")
    if spec in ("", "*"):
        return list(_taken)
    try:
        fd = int(spec)
    except ValueError:
        raise ActivationError(f"fd://{spec}: not a file descriptor number") from None
    found = [s for s in _taken if s.fileno() == fd]
    if not found:
        raise ActivationError(f"fd://{spec}: systemd passed fds {SD_LISTEN_FDS_START}.."
                              f"{SD_LISTEN_FDS_START + len(_taken) - 1}")
    return found


def notify(state: str) -> None:
    """Tell systemd about this service's state (READY=1, STOPPING=1); a no-op when not run by it."""
    address = _notify_address
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(state.encode(), address)
