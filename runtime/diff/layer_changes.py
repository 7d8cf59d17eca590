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
KEPT_XATTRS = ("security.capability",)


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
