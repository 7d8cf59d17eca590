"""Starting a created runc container by releasing its init at the exec fifo, as `runc start` does.

`runc create` leaves the container's init blocked opening `<runc root>/<id>/exec.fifo` for writing
(through a descriptor it holds, not by path); `runc start` opens it for reading, reads the byte the init
then writes, and removes it (runc tells "created" from "running" by the fifo's presence). Doing those
steps here spares a runc process, 5-7 ms of every container start. Anything else (no fifo, an init
already gone) is left to `runc start`, whose errors the caller wants.
"""
from __future__ import annotations

import asyncio
import os

FIFO = "exec.fifo"


async def release(container_dir: str, init_pid: int) -> bool:
    """Let the init (pid `init_pid`) blocked at `container_dir`/exec.fifo run its process. False when there is
    no fifo or no such init (nothing done), or when the init dies first (runc then finds it stopped)."""
    path = os.path.join(container_dir, FIFO)
    try:
        pidfd = os.pidfd_open(init_pid)
    except ProcessLookupError:
        return False
    try:
        try:
            # Read-write never blocks on a fifo (read-only would wait for the writer); the init's write-only
            # open, which it is blocked in, returns as it does for runc's reader.
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            # Gone from runc's view at once: should this daemon die before the byte comes, runc finds the
            # container running (or, its init killed by a write nobody reads, stopped), never still created.
            os.unlink(path)
            if not await _first_written(fd, pidfd):
                return False
            os.read(fd, 1)
            return True
        finally:
            os.close(fd)
    finally:
        os.close(pidfd)


async def _first_written(fd: int, pidfd: int) -> bool:
    """True once the fifo has the init's byte; False if the init exits before writing it."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[bool] = loop.create_future()

    def settle(written: bool) -> None:
        if not outcome.done():
            outcome.set_result(written)

    loop.add_reader(fd, settle, True)
    loop.add_reader(pidfd, settle, False)
    try:
        return await outcome
    finally:
        loop.remove_reader(fd)
        loop.remove_reader(pidfd)
