"""What a layer is made of: the events change walkers yield, in tar order, for the layer writer.

A walker yields, depth first with names sorted byte-wise (so a directory comes before its contents):

* `Change`: an entry the layer carries (`added`, or modified; the writer reads it from `dir_fd`/`name`),
  or, with `deleted`, a whiteout for something the layers below have; `opaque` on a directory says
  it hides everything the layers below had in it;
* `Pending`: a directory descended into that did not change itself; the writer emits its header only
  if something below it is emitted (a layer needs an entry's parent directories before it).

The fds are valid only until the walker resumes: the writer uses them at once. `docker diff`
(runtime/rootfs/changes.py) reads the same events.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

OPAQUE_XATTR = "trusted.overlay.opaque"
# The xattrs a layer carries (Docker's file capabilities, and user data); overlay's own and
# security labels of this host are not the image's.
CAPABILITY_XATTR = "security.capability"
KEPT_XATTRS = (CAPABILITY_XATTR,)


@dataclass(frozen=True, slots=True)
class Change:
    parts: tuple[str, ...]
    dir_fd: int
    name: str
    deleted: bool = False
    opaque: bool = False
    added: bool = False


@dataclass(frozen=True, slots=True)
class Pending:
    parts: tuple[str, ...]
    dir_fd: int
    name: str


Event = Change | Pending


def kept_xattr(name: str) -> bool:
    return name in KEPT_XATTRS or name.startswith("user.")


def xattrs(fd: int) -> dict[str, bytes]:
    """The kept xattrs of an open file or directory (none where the filesystem has no xattrs)."""
    try:
        names = os.listxattr(fd)
    except OSError:
        return {}
    out: dict[str, bytes] = {}
    for name in names:
        if kept_xattr(name):
            try:
                out[name] = os.getxattr(fd, name)
            except OSError:
                continue
    return out


def same_time(a_ns: int, b_ns: int) -> bool:
    """moby's sameFsTime: equal, or the same second where either side kept no fraction (a tar's whole seconds)."""
    return a_ns == b_ns or (a_ns // 1_000_000_000 == b_ns // 1_000_000_000
                            and (a_ns % 1_000_000_000 == 0 or b_ns % 1_000_000_000 == 0))


def dir_differs(a: os.stat_result, b: os.stat_result, *, mtime: bool) -> bool:
    """Whether directory `a` changed itself from `b`: its mode or owner, and (with `mtime`) its mtime, as moby's diff
    compares them (an entry made or removed in it moves it; `touch -d` sets it)."""
    return ((stat.S_IMODE(a.st_mode), a.st_uid, a.st_gid) != (stat.S_IMODE(b.st_mode), b.st_uid, b.st_gid)
            or (mtime and not same_time(a.st_mtime_ns, b.st_mtime_ns)))


def mount_parents(hidden: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """The directories above the mount points a walk leaves out: runc makes the missing ones in them, which moves
    their mtime without the container having changed them (Docker's init layer makes them below the container's)."""
    return {path[:i] for path in hidden for i in range(len(path))}


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def hidden_parts(paths: set[str]) -> set[tuple[str, ...]]:
    """Absolute paths ("/etc/hosts") as the walkers' parts tuples."""
    return {tuple(p for p in path.split("/") if p) for path in paths} - {()}
