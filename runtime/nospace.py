"""What to say when a write fails with ENOSPC (or EDQUOT, or SQLite's SQLITE_FULL): which directory is full,
and by how much.

The errno alone ("no space left on device") names neither the directory nor the filesystem, and the
runtime writes to two trees (its root: content, snapshots, metadata; its state: bundles, task files).
Which one ran out is read back from the filesystems (statvfs) when the error happens: the failing path if
the error carries one, else whichever of the daemon's trees has the least room. The budget shown is the
filesystem's: its size and what is left of it to unprivileged writers.
"""
from __future__ import annotations

import errno
import os
import sqlite3

from runtime.errors import Unavailable

_FULL = (errno.ENOSPC, errno.EDQUOT)


class Directories:
    """The trees the daemon writes to, named once at start (runtime.daemon.serve)."""

    paths: tuple[str, ...] = ()

    @classmethod
    def watch(cls, *paths: str) -> None:
        cls.paths = tuple(os.path.abspath(p) for p in paths)


def explain(exc: BaseException) -> Unavailable | None:
    """A typed error naming the full directory, or None when `exc` is not an out-of-space error."""
    if isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        code, failing, said = errno.ENOSPC, None, f"{exc} (the metadata database)"
    elif isinstance(exc, OSError) and exc.errno in _FULL:
        code, failing = exc.errno, exc.filename if isinstance(exc.filename, str) else None
        said = failing or "a write of the runtime"
    else:
        return None
    candidates = [d for d in ([os.path.dirname(failing)] if failing else []) + list(Directories.paths) if d]
    rooms = [(d, room) for d in candidates if (room := _room(d)) is not None]
    words = os.strerror(code).lower()
    if not rooms:
        return Unavailable(f"{words}: {said}")
    # The failing path's own filesystem is the answer when the error names one; else the fullest tree.
    directory, (free, size) = rooms[0] if failing else min(rooms, key=lambda r: r[1][0])
    what = "quota" if code == errno.EDQUOT else "filesystem"
    return Unavailable(f"{words}: {said}: the {what} holding {directory} (mounted at "
                       f"{_mountpoint(directory)}) has {_size(free)} free of {_size(size)}; remove what is unused "
                       f"there (docker system prune -a, pyctr images rm) or give {directory} more room")


def _room(path: str) -> tuple[int, int] | None:
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        st = os.statvfs(path or "/")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def _mountpoint(path: str) -> str:
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
