"""Exit codes, pid files and liveness of conmon-supervised processes.

conmon records a process's end in files, so the runtime can learn it even if it was
down at the time: the exit code as decimal text (written atomically with a rename,
after the log has been fsynced) and the pids in pid files. While the runtime is up,
`wait_exit` is woken by a pidfd on the conmon process itself: no polling, one fd per
process in the event loop's epoll set, and a conmon that dies without recording
anything is noticed too.
"""
from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass

# Where create_task/create_exec have conmon write its files inside a process's state dir.
CONMON_PIDFILE = "conmon.pid"
PIDFILE = "pid"
EXIT_FILE = "exit"  # conmon's --persist-dir copy of the exit code


def _read_int(path: str) -> int | None:
    """The integer a file holds, or None while it is missing or not (yet) a number."""
    try:
        with open(path, "rb") as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def read_exit_file(path: str) -> int | None:
    """The exit code conmon recorded, or None while there is none."""
    return _read_int(path)


def read_pidfile(path: str) -> int | None:
    pid = _read_int(path)
    return pid if pid is not None and pid > 0 else None


_PF_EXITING = 0x4  # <linux/sched.h>


def _stat(pid: int) -> tuple[bytes, int] | None:
    """(state letter, kernel flags) of a process, None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields follow the command name, which may itself contain spaces or parentheses.
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[0], int(fields[6])


def is_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting to be reaped counts as dead."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in (b"Z", b"X")


def is_conmon(pid: int, pidfile: str) -> bool:
    """True if `pid` is a live conmon started with `--conmon-pidfile <pidfile>`.

    Matching the exact pidfile argument guards against the pid having been reused by an
    unrelated process (or another container's conmon) after ours exited.
    """
    stat = _stat(pid)
    if stat is None or stat[0] in (b"Z", b"X"):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    if argv == [b""]:
        # A process on its way out releases its memory, arguments included, before it
        # closes its files: until it is a zombie it may still hold the attach socket and
        # fifos. (A kernel thread has no arguments either; one that is exiting as well
        # would only make a waiter wait for its end, which is imminent.)
        return bool(stat[1] & _PF_EXITING)
    want = os.fsencode(pidfile)
    return any(a in (b"--conmon-pidfile", b"-P") and b == want for a, b in itertools.pairwise(argv))


async def wait_gone(conmon_pid: int, conmon_pidfile: str) -> None:
    """Return once that conmon has exited (at once if the pid is not, or no longer, it)."""
    try:
        pidfd = os.pidfd_open(conmon_pid)
    except ProcessLookupError:
        return
    try:
        # Checked after pinning the pid with the pidfd, so it cannot be recycled in between.
        if is_conmon(conmon_pid, conmon_pidfile):
            loop = asyncio.get_running_loop()
            ended: asyncio.Future[None] = loop.create_future()

            def exited() -> None:
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(pidfd, exited)
            try:
                await ended
            finally:
                loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)


async def wait_exit(conmon_pid: int, conmon_pidfile: str, exit_file: str) -> int | None:
    """Wait until the conmon supervising a process exits; return the exit code it recorded.

    None means conmon ended without recording one (it was killed, or crashed): the
    process it supervised may still be running, orphaned, and the caller must ask runc.
    """
    await wait_gone(conmon_pid, conmon_pidfile)
    return read_exit_file(exit_file)


@dataclass(frozen=True)
class Recovered:
    """What a process's state dir says about it after the runtime restarts."""

    conmon_pid: int | None
    conmon_alive: bool  # its conmon still supervises it: wait_exit() will report the end
    pid: int | None     # the process's host pid (None if it was never created)
    pid_alive: bool     # the process itself still runs (it can, orphaned, if conmon was killed)
    exit_code: int | None


def recover(state_dir: str) -> Recovered:
    """Read a task's or exec's state dir (the layout create_task/create_exec use)."""
    conmon_pidfile = os.path.join(state_dir, CONMON_PIDFILE)
    conmon_pid = read_pidfile(conmon_pidfile)
    pid = read_pidfile(os.path.join(state_dir, PIDFILE))
    return Recovered(
        conmon_pid=conmon_pid,
        conmon_alive=conmon_pid is not None and is_conmon(conmon_pid, conmon_pidfile),
        pid=pid,
        pid_alive=pid is not None and is_alive(pid),
        # Read last: an exit recorded between the checks above must not be missed.
        exit_code=read_exit_file(os.path.join(state_dir, EXIT_FILE)),
    )
