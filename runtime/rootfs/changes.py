"""What a container changed in its rootfs (`docker diff`).

Overlay: the snapshot's upperdir holds exactly what changed; each entry is compared
with what the lowerdirs show at that path (whiteouts are deletions, and an opaque
dir hides what the layers below had in it); a file copied up but still as it was is no change.
Native: the container's tree is compared with a temporary view of its parent snapshot. Either
way a directory counts as modified for its own mode, owner or mtime (not the mtime of those
above a mount point: runc makes missing mount points in them), or because something below it
changed, and the mount points the spec asks for are left out, as Docker's init layer hides them.

The walks are the ones Compare makes layers from (runtime/diff/overlay_changes.py,
tree_changes.py); this module reads their events as Docker's list. They are blocking and
run in a thread.
"""
from __future__ import annotations

import asyncio
import enum
import os
import posixpath
import secrets
import stat

from pydantic import BaseModel

from runtime import mount as mountlib
from runtime.diff.layer_changes import CAPABILITY_XATTR, Change as LayerChange, hidden_parts, same_time
from runtime.diff.overlay_changes import lower_names, lower_path, overlay_walk
from runtime.diff.tree_changes import tree_walk
from runtime.errors import FailedPrecondition
from runtime.metadata.containers import Container
from runtime.metadata.snapshots import SnapshotService
from runtime.rootfs.view import absolute
from runtime.untrusted_tar import DIR_FLAGS


class Kind(enum.IntEnum):
    MODIFIED = 0
    ADDED = 1
    DELETED = 2


class Change(BaseModel):
    path: str
    kind: Kind


Found = dict[str, Kind]


def _path(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(parts)


def _kind(ev: LayerChange) -> Kind:
    return Kind.DELETED if ev.deleted else Kind.ADDED if ev.added else Kind.MODIFIED


def _copied_up_as_it_was(upper: str, lowers: list[str], parts: tuple[str, ...]) -> bool:
    """A file overlayfs copied up (opened for writing, chmod or chown to what it was, a hard link made to it) that
    still is what the layers below have: moby's diff compares type, mode, owner, device, size, mtime, link target
    and file capabilities, and lists such a file as unchanged."""
    path = os.path.join(upper, *parts)
    a = os.lstat(path)
    below = lower_path(lowers, parts)
    if stat.S_ISDIR(a.st_mode) or below is None:
        return False
    b = os.lstat(below)
    if (stat.S_IFMT(a.st_mode), stat.S_IMODE(a.st_mode), a.st_uid, a.st_gid, a.st_rdev, a.st_size) != \
            (stat.S_IFMT(b.st_mode), stat.S_IMODE(b.st_mode), b.st_uid, b.st_gid, b.st_rdev, b.st_size) \
            or not same_time(a.st_mtime_ns, b.st_mtime_ns):
        return False
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(path) == os.readlink(below)
    return _capability(path) == _capability(below)


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return None


def overlay_changes(upper: str, lowers: list[str], hidden: set[tuple[str, ...]]) -> Found:
    found: Found = {}
    for ev in overlay_walk(upper, lowers, hidden):
        if not isinstance(ev, LayerChange):
            continue
        if not (ev.added or ev.deleted or ev.opaque) and _copied_up_as_it_was(upper, lowers, ev.parts):
            continue
        found[_path(ev.parts)] = _kind(ev)
        if ev.opaque and not ev.added:
            fd = os.open(ev.name, DIR_FLAGS, dir_fd=ev.dir_fd)
            try:
                for gone in lower_names(lowers, ev.parts) - set(os.listdir(fd)):
                    found[_path((*ev.parts, gone))] = Kind.DELETED
            finally:
                os.close(fd)
    return found


def tree_changes(new: str, old: str | None, hidden: set[tuple[str, ...]]) -> Found:
    """Compare two plain trees (the native snapshotter's); `old` None: everything was added."""
    return {_path(ev.parts): _kind(ev) for ev in tree_walk(new, old, hidden) if isinstance(ev, LayerChange)}


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
    parts = hidden_parts(hidden)
    mounts = await snapshots.mounts(c.snapshot_key)
    if len(mounts) == 1 and (dirs := mountlib.overlay_dirs(mounts[0])) is not None:
        return report(await asyncio.to_thread(overlay_changes, *dirs, parts), hidden)
    if len(mounts) != 1 or not mountlib.is_bind(mounts[0]):
        raise FailedPrecondition(f"cannot list the changes of container {c.id}: snapshotter {c.snapshotter} "
                                 "gives neither an overlay nor a bind mount")
    parent = (await snapshots.stat(c.snapshot_key)).parent
    if parent is None:
        return report(await asyncio.to_thread(tree_changes, mounts[0].source, None, parts), hidden)
    key = f"changes-{c.id}-{secrets.token_hex(4)}"
    view = await snapshots.view(key, parent, {"io.pyengine.changes": c.id})
    try:
        return report(await asyncio.to_thread(tree_changes, mounts[0].source, view[0].source, parts), hidden)
    finally:
        await snapshots.remove(key)
