"""What a container changed in its rootfs (`docker diff`).

Overlay: the snapshot's upperdir holds exactly what changed; each entry is compared
with what the lowerdirs show at that path (whiteouts are deletions, and an opaque
dir hides what the layers below had in it). Native: the container's tree is
compared with a temporary view of its parent snapshot. Either way a directory counts
as modified only for its own mode or owner, or because something below it changed
(its mtime moves whenever runc creates a mount point in it), and the mount points
the spec asks for are left out, as Docker's init layer hides them.

The walks are blocking and run in a thread.
"""
from __future__ import annotations

import asyncio
import enum
import os
import posixpath
import secrets
import stat
from collections.abc import Iterator

from pydantic import BaseModel

from runtime import mount as mountlib
from runtime.errors import FailedPrecondition
from runtime.metadata.containers import Container
from runtime.metadata.snapshots import SnapshotService
from runtime.rootfs.view import absolute
from runtime.untrusted_tar import DIR_FLAGS, lstat

OPAQUE_XATTR = "trusted.overlay.opaque"


class Kind(enum.IntEnum):
    MODIFIED = 0
    ADDED = 1
    DELETED = 2


class Change(BaseModel):
    path: str
    kind: Kind


Found = dict[str, Kind]


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path_or_fd: str | int) -> bool:
    try:
        return os.getxattr(path_or_fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _own_metadata_differs(a: os.stat_result, b: os.stat_result) -> bool:
    return (stat.S_IMODE(a.st_mode), a.st_uid, a.st_gid) != (stat.S_IMODE(b.st_mode), b.st_uid, b.st_gid)


def _differs(a: os.stat_result, b: os.stat_result) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or _own_metadata_differs(a, b):
        return True
    if stat.S_ISDIR(a.st_mode):
        return False
    return (a.st_size, a.st_mtime_ns, a.st_rdev) != (b.st_size, b.st_mtime_ns, b.st_rdev)


def _in_layer(layer: str, parts: tuple[str, ...]) -> tuple[os.stat_result | None, bool]:
    """(the entry at `parts` in one lower layer, whether the layers below it are hidden there)."""
    path, hidden = layer, False
    for i, name in enumerate(parts):
        path = os.path.join(path, name)  # every component before is a real dir of this layer
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None, hidden
        if _is_whiteout(st):
            return None, True
        if i == len(parts) - 1:
            return st, True
        if not stat.S_ISDIR(st.st_mode):
            return None, True
        hidden = hidden or _is_opaque(path)
    return os.lstat(layer), True


def _lower(lowers: list[str], parts: tuple[str, ...]) -> os.stat_result | None:
    """What the layers below the container show at `parts` (topmost layer first)."""
    for layer in lowers:
        st, hidden = _in_layer(layer, parts)
        if st is not None or hidden:
            return st
    return None


def _lower_names(lowers: list[str], parts: tuple[str, ...]) -> set[str]:
    """The merged listing the layers below show for directory `parts`."""
    names: set[str] = set()
    gone: set[str] = set()
    for layer in lowers:
        st, hidden = _in_layer(layer, parts)
        if st is None:
            if hidden:
                break
            continue
        if not stat.S_ISDIR(st.st_mode):
            break
        d = os.path.join(layer, *parts)
        for name in os.listdir(d):
            if _is_whiteout(os.lstat(os.path.join(d, name))):
                gone.add(name)
            elif name not in gone:
                names.add(name)
        if _is_opaque(d):
            break
    return names


def _walk(top: str) -> Iterator[tuple[tuple[str, ...], int, list[str]]]:
    """(parts, dir fd, sorted names) for every dir under `top`, top first; never follows symlinks."""
    stack = [((), os.open(top, DIR_FLAGS))]
    try:
        while stack:
            parts, fd = stack.pop()
            try:
                names = sorted(os.listdir(fd))
                yield parts, fd, names
                for name in reversed(names):
                    st = lstat(fd, name)
                    if st is not None and stat.S_ISDIR(st.st_mode):
                        stack.append(((*parts, name), os.open(name, DIR_FLAGS, dir_fd=fd)))
            finally:
                os.close(fd)
    finally:
        for _, fd in stack:
            os.close(fd)


def _lstat_path(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _path(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(parts)


def overlay_changes(upper: str, lowers: list[str]) -> Found:
    found: Found = {}
    for parts, fd, names in _walk(upper):
        for name in names:
            child = (*parts, name)
            st = lstat(fd, name)
            if st is None:
                continue
            if _is_whiteout(st):
                found[_path(child)] = Kind.DELETED
                continue
            below = _lower(lowers, child)
            if below is None:
                found[_path(child)] = Kind.ADDED
            elif not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(below.st_mode) \
                    or _own_metadata_differs(st, below):
                found[_path(child)] = Kind.MODIFIED
            if below is not None and stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(below.st_mode):
                cfd = os.open(name, DIR_FLAGS, dir_fd=fd)
                try:
                    if _is_opaque(cfd):
                        for hidden in _lower_names(lowers, child) - set(os.listdir(cfd)):
                            found[_path((*child, hidden))] = Kind.DELETED
                finally:
                    os.close(cfd)
    return found


def tree_changes(new: str, old: str | None) -> Found:
    """Compare two plain trees (the native snapshotter's); `old` None: everything was added."""
    found: Found = {}
    for parts, fd, names in _walk(new):
        # The old side is our own view: plain paths are fine there, checked to be real dirs.
        old_dir = None if old is None else os.path.join(old, *parts)
        if old_dir is not None and not (os.path.isdir(old_dir) and not os.path.islink(old_dir)):
            old_dir = None
        if old_dir is not None:
            for name in sorted(set(os.listdir(old_dir)) - set(names)):
                found[_path((*parts, name))] = Kind.DELETED
        for name in names:
            st = lstat(fd, name)
            if st is None:
                continue
            before = None if old_dir is None else _lstat_path(os.path.join(old_dir, name))
            if before is None:
                found[_path((*parts, name))] = Kind.ADDED
            elif _differs(st, before):
                found[_path((*parts, name))] = Kind.MODIFIED
    return found


def report(found: Found, hidden: set[str]) -> list[Change]:
    """Docker's list: mount points left out, every changed path's parent dirs marked modified, sorted."""
    out = {p: k for p, k in found.items() if p not in hidden}
    for path in list(out):
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in out:
            out[parent] = Kind.MODIFIED
            parent = posixpath.dirname(parent)
    return [Change(path=p, kind=out[p]) for p in sorted(out)]


async def container_changes(c: Container, snapshots: SnapshotService) -> list[Change]:
    hidden = {absolute(m.get("destination", "")) for m in c.spec.get("mounts") or []}
    mounts = await snapshots.mounts(c.snapshot_key)
    if len(mounts) == 1 and (dirs := mountlib.overlay_dirs(mounts[0])) is not None:
        return report(await asyncio.to_thread(overlay_changes, *dirs), hidden)
    if len(mounts) != 1 or not mountlib.is_bind(mounts[0]):
        raise FailedPrecondition(f"cannot list the changes of container {c.id}: snapshotter {c.snapshotter} "
                                 "gives neither an overlay nor a bind mount")
    parent = (await snapshots.stat(c.snapshot_key)).parent
    if parent is None:
        return report(await asyncio.to_thread(tree_changes, mounts[0].source, None), hidden)
    key = f"changes-{c.id}-{secrets.token_hex(4)}"
    view = await snapshots.view(key, parent, {"io.pyengine.changes": c.id})
    try:
        return report(await asyncio.to_thread(tree_changes, mounts[0].source, view[0].source), hidden)
    finally:
        await snapshots.remove(key)
