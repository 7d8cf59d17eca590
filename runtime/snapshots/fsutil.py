"""Tree walking and deletion that survive hostile trees.

Snapshot contents come from image layers and containers, so they may be nested far
deeper than the recursion limit or PATH_MAX. Both helpers work on directory fds,
never follow symlinks and never recurse.
"""
from __future__ import annotations

import os
import stat

from runtime.snapshots.snapshotter import Usage

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def disk_usage(path: str) -> Usage:
    """Blocks allocated, inodes and content bytes under `path`, counting hardlinked inodes once.

    Depth-first with one open dir per level of the current path, so open fds grow
    with depth, not with the width of the tree.
    """
    top = os.open(path, _DIR_FLAGS)
    st = os.fstat(top)
    seen = {(st.st_dev, st.st_ino)}
    size = st.st_blocks * 512
    content = 0
    stack = [(top, os.scandir(top))]
    try:
        while stack:
            fd, it = stack[-1]
            entry = next(it, None)
            if entry is None:
                it.close()
                os.close(fd)
                stack.pop()
                continue
            st = entry.stat(follow_symlinks=False)
            ident = (st.st_dev, st.st_ino)
            if ident not in seen:
                seen.add(ident)
                size += st.st_blocks * 512
                if not entry.is_dir(follow_symlinks=False):
                    content += st.st_size
            if entry.is_dir(follow_symlinks=False):
                child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                try:
                    stack.append((child, os.scandir(child)))
                except BaseException:
                    os.close(child)
                    raise
    finally:
        for fd, it in stack:
            it.close()
            os.close(fd)
    return Usage(size=size, inodes=len(seen), content=content)


def remove_tree(path: str, dir_fd: int | None = None) -> None:
    """Delete `path` (relative to `dir_fd` if given) and everything under it.

    Every subdirectory met is first renamed up to the top of the tree being
    deleted, flattening it as deletion proceeds: at most two dirs are open at any
    time whatever the depth. A mount point inside makes the rename fail (EBUSY)
    instead of the mounted filesystem being emptied.
    """
    st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path, dir_fd=dir_fd)
        return
    top = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    cur = os.dup(top)
    cur_name: str | None = None  # None while emptying `top` itself
    pending: list[str] = []  # flattened dirs, directly under `top`, still to empty
    counter = 0
    try:
        while True:
            for name in os.listdir(cur):
                if not stat.S_ISDIR(os.stat(name, dir_fd=cur, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=cur)
                else:
                    # Renamed even when already at the top: that is what refuses mount points.
                    while True:
                        counter += 1
                        flat = f".flat-{counter}"
                        try:
                            os.stat(flat, dir_fd=top, follow_symlinks=False)
                        except FileNotFoundError:
                            break
                    os.rename(name, flat, src_dir_fd=cur, dst_dir_fd=top)
                    pending.append(flat)
            os.close(cur)
            cur = -1
            if cur_name is not None:
                os.rmdir(cur_name, dir_fd=top)
            if not pending:
                break
            cur_name = pending.pop()
            cur = os.open(cur_name, _DIR_FLAGS, dir_fd=top)
    finally:
        if cur >= 0:
            os.close(cur)
        os.close(top)
    os.rmdir(path, dir_fd=dir_fd)
