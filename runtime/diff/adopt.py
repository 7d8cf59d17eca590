"""Compare's `commit`: the snapshot whose changes were just read becomes the layer's own chainID snapshot.

A builder's next step, and unpacking the image it writes, need the layer as a committed snapshot
named by its chainID (parent's chainID + diff_id). Applying the layer just written would rebuild
what the active snapshot already holds, so where that snapshot is exactly the layer over its
parent it is committed under the chainID instead, and the key is prepared again, empty, on top
of it: whoever owns the key (a step's container) sees the same files.

Only where that is exact and safe: an overlay upper dir read directly (whole: no redirect_dir or
metacopy) over the snapshot's own parent, which is a chainID; no mount uses the upper dir; the
chainID is not there yet; and a lease holds the new snapshot until an image references it. The
mount points a container's spec made (left out of the layer) are removed from the upper dir
first, without following any symlink, so the snapshot carries nothing the layer does not.
Anything else answers None and the caller unpacks as before.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import stat

from runtime.errors import AlreadyExists
from runtime.metadata.leases import current_lease
from runtime.metadata.snapshots import SnapshotService
from runtime.snapshots.snapshotter import Kind

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _upper_in_use(upper: str) -> bool:
    """Whether an overlay mount of this namespace has `upper` as its upper dir (given relative to the
    snapshots' dir, as long option strings are mounted, too)."""
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            for opt in line.rstrip().rsplit(b" ", 1)[-1].split(b","):
                if opt.startswith(b"upperdir="):
                    value = os.fsdecode(opt[len(b"upperdir="):])
                    if value == upper or (not value.startswith("/") and upper.endswith("/" + value)):
                        return True
    return False


def _open_parent(upper: str, parts: tuple[str, ...]) -> int | None:
    """An fd of the directory holding `parts` inside `upper`, every step a real directory (no symlink)."""
    fd = os.open(upper, _DIR_FLAGS)
    for part in parts[:-1]:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = child
    return fd


def _remove_hidden(upper: str, hidden: set[tuple[str, ...]]) -> None:
    for parts in hidden:
        parent = _open_parent(upper, parts)
        if parent is None:
            continue  # not in the upper dir: nothing of it to drop
        try:
            try:
                st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                continue
            # The layer has the directory as the step left it: its times stay what they were.
            before = os.fstat(parent)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(parts[-1], dir_fd=parent)
            else:
                os.unlink(parts[-1], dir_fd=parent)
            os.utime(parent, ns=(before.st_atime_ns, before.st_mtime_ns))
        finally:
            os.close(parent)


def chain_id(parent: str, diff_id: str) -> str:
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


async def commit_changes(service: SnapshotService, key: str, parent: str | None, upper: str | None,
                         hidden: set[tuple[str, ...]], diff_id: str) -> str | None:
    """The chainID `key`'s changes are now committed as, or None where that cannot be done exactly."""
    if upper is None or parent is None or not parent.startswith("sha256:") or current_lease() is None:
        return None
    info = await service.stat(key)
    chain = chain_id(parent, diff_id)
    if info.kind is not Kind.ACTIVE or await service.exists(chain):
        return None
    if await asyncio.to_thread(_upper_in_use, upper):
        return None
    await asyncio.to_thread(_remove_hidden, upper, hidden)
    try:
        await service.commit(chain, key, {})
    except AlreadyExists:
        return None  # a concurrent unpack made it: the key still has its changes
    with contextlib.suppress(AlreadyExists):
        await service.prepare(key, chain, dict(info.labels))
    return chain
