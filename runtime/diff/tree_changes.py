"""A layer from two plain trees (the native snapshotter's): what `new` has that `old` has not.

Both trees are walked together. An entry is in the layer when it is new, or differs from the
old one in type, mode, owner, device number, xattrs, size, mtime or symlink target (a
directory only for its own type, mode, owner and xattrs: its mtime moves with any change
below it, which the layer carries anyway); what only `old` has becomes a whiteout. Blocking:
run it in a thread.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from runtime.diff.layer_changes import Change, Event, Pending, dir_differs, mount_parents, xattrs
from runtime.untrusted_tar import DIR_FLAGS, lstat

_NOFOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def tree_walk(new: str, old: str | None, hidden: set[tuple[str, ...]]) -> Generator[Event, None, None]:
    # An explicit stack, not recursion: a container may nest directories deeper than Python recurses.
    stack: list[_Level] = []
    above_mounts = mount_parents(hidden)
    try:
        stack.append(_Level.open((), os.open(new, DIR_FLAGS), None if old is None else os.open(old, DIR_FLAGS)))
        while stack:
            level = stack[-1]
            name = next(level.names, None)
            if name is None:
                stack.pop().close()
                continue
            child = (*level.parts, name)
            if child in hidden:
                continue
            nfd, ofd = level.nfd, level.ofd
            if name not in level.new_names:
                yield Change(child, nfd, name, deleted=True)
                continue
            st = lstat(nfd, name)
            if st is None:
                continue
            before = lstat(ofd, name) if ofd is not None and name in level.old_names else None
            changed = before is None or _differs(st, before, nfd, ofd, name,  # type: ignore[arg-type]
                                                 dir_mtime=child not in above_mounts)
            if not stat.S_ISDIR(st.st_mode):
                if changed:
                    yield Change(child, nfd, name, added=before is None)
                continue
            cfd = os.open(name, DIR_FLAGS, dir_fd=nfd)
            sub_old = None
            try:
                if before is not None and stat.S_ISDIR(before.st_mode):
                    sub_old = os.open(name, DIR_FLAGS, dir_fd=ofd)
                stack.append(_Level.open(child, cfd, sub_old))
            except BaseException:
                os.close(cfd)
                if sub_old is not None:
                    os.close(sub_old)
                raise
            yield Change(child, nfd, name, added=before is None) if changed else Pending(child, nfd, name)
    finally:
        for level in stack:
            level.close()


@dataclass
class _Level:
    """One directory being walked: its fds in both trees and the names still to visit."""

    parts: tuple[str, ...]
    nfd: int
    ofd: int | None
    new_names: set[str]
    old_names: set[str]
    names: Iterator[str]

    @classmethod
    def open(cls, parts: tuple[str, ...], nfd: int, ofd: int | None) -> "_Level":
        new_names = set(os.listdir(nfd))
        old_names = set(os.listdir(ofd)) if ofd is not None else set()
        return cls(parts, nfd, ofd, new_names, old_names, iter(sorted(new_names | old_names)))

    def close(self) -> None:
        os.close(self.nfd)
        if self.ofd is not None:
            os.close(self.ofd)


def _xattrs_of(dir_fd: int, name: str, st: os.stat_result) -> dict[str, bytes]:
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return {}
    fd = os.open(name, _NOFOLLOW_READ, dir_fd=dir_fd)
    try:
        return xattrs(fd)
    finally:
        os.close(fd)


def _differs(a: os.stat_result, b: os.stat_result, nfd: int, ofd: int, name: str, *, dir_mtime: bool) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return True
    if (stat.S_IMODE(a.st_mode), a.st_uid, a.st_gid, a.st_rdev) != (stat.S_IMODE(b.st_mode), b.st_uid, b.st_gid,
                                                                      b.st_rdev):
        return True
    if stat.S_ISDIR(a.st_mode) and dir_differs(a, b, mtime=dir_mtime):
        return True
    if not stat.S_ISDIR(a.st_mode) and (a.st_size, a.st_mtime_ns) != (b.st_size, b.st_mtime_ns):
        return True
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(name, dir_fd=nfd) != os.readlink(name, dir_fd=ofd)
    return _xattrs_of(nfd, name, a) != _xattrs_of(ofd, name, b)
