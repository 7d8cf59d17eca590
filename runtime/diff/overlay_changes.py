"""A snapshot's changes from an overlay upper dir: it holds exactly what the snapshot changed.

Every entry of the upper dir is a change; overlayfs' whiteouts (0/0 character devices) are
deletions, and a directory with trusted.overlay.opaque=y hides what the layers below had in
it. The lower dirs are read only to tell an added entry from a modified one and to leave out
directories that are in the upper dir only because something below them changed (overlayfs
copies parents up, keeping their mtime; a layer still writes them as parents, see layer_changes.Pending).
Blocking: run it in a thread.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Generator, Iterator

from runtime.diff.layer_changes import Change, Event, Pending, dir_differs, is_opaque, is_whiteout, mount_parents
from runtime.untrusted_tar import DIR_FLAGS, lstat


def _is_opaque_path(path: str) -> bool:
    fd = os.open(path, DIR_FLAGS)
    try:
        return is_opaque(fd)
    finally:
        os.close(fd)


def _in_layer(layer: str, parts: tuple[str, ...]) -> tuple[os.stat_result | None, bool]:
    """(the entry at `parts` in one lower layer, whether the layers below it are hidden there)."""
    path, hidden = layer, False
    for i, name in enumerate(parts):
        path = os.path.join(path, name)  # every component before is a real dir of this layer
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None, hidden
        if is_whiteout(st):
            return None, True
        if i == len(parts) - 1:
            return st, True
        if not stat.S_ISDIR(st.st_mode):
            return None, True
        hidden = hidden or _is_opaque_path(path)
    return os.lstat(layer), True


def lower_entry(lowers: list[str], parts: tuple[str, ...]) -> os.stat_result | None:
    """What the layers below (topmost first) show at `parts`."""
    for layer in lowers:
        st, hidden = _in_layer(layer, parts)
        if st is not None or hidden:
            return st
    return None


def lower_path(lowers: list[str], parts: tuple[str, ...]) -> str | None:
    """The path of what the layers below (topmost first) show at `parts`, if they show something."""
    for layer in lowers:
        st, hidden = _in_layer(layer, parts)
        if st is not None:
            return os.path.join(layer, *parts)
        if hidden:
            return None
    return None


def lower_names(lowers: list[str], parts: tuple[str, ...]) -> set[str]:
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
            if is_whiteout(os.lstat(os.path.join(d, name))):
                gone.add(name)
            elif name not in gone:
                names.add(name)
        if _is_opaque_path(d):
            break
    return names


def overlay_walk(upper: str, lowers: list[str], hidden: set[tuple[str, ...]]) -> Generator[Event, None, None]:
    # An explicit stack, not recursion: a container may nest directories deeper than Python recurses.
    above_mounts = mount_parents(hidden)
    top = os.open(upper, DIR_FLAGS)
    stack: list[tuple[tuple[str, ...], int, Iterator[str]]] = []
    try:
        stack.append(((), top, iter(sorted(os.listdir(top)))))
        while stack:
            parts, fd, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                os.close(fd)
                continue
            child = (*parts, name)
            if child in hidden:
                continue
            st = lstat(fd, name)
            if st is None:
                continue
            if is_whiteout(st):
                yield Change(child, fd, name, deleted=True)
                continue
            below = lower_entry(lowers, child)
            if not stat.S_ISDIR(st.st_mode):
                yield Change(child, fd, name, added=below is None)
                continue
            cfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            try:
                opaque = is_opaque(cfd)
                listing = iter(sorted(os.listdir(cfd)))
            except BaseException:
                os.close(cfd)
                raise
            stack.append((child, cfd, listing))
            if below is not None and stat.S_ISDIR(below.st_mode) and not opaque \
                    and not dir_differs(st, below, mtime=child not in above_mounts):
                yield Pending(child, fd, name)
            else:
                yield Change(child, fd, name, opaque=opaque, added=below is None)
    finally:
        for _, fd, _ in stack:
            os.close(fd)
