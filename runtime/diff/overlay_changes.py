"""A layer from an overlay upper dir: it holds exactly what the snapshot changed.

Everything in the upper dir is an entry of the layer; overlayfs' whiteouts (0/0 character
devices) are deletions, and a directory with trusted.overlay.opaque=y hides what the layers
below had in it. The lower dirs are never read. Blocking: run it in a thread.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from runtime.diff.layer_changes import Change, Event, is_opaque, is_whiteout
from runtime.untrusted_tar import DIR_FLAGS, lstat


def overlay_walk(upper: str, hidden: set[tuple[str, ...]]) -> Iterator[Event]:
    fd = os.open(upper, DIR_FLAGS)
    try:
        yield from _dir(fd, (), hidden)
    finally:
        os.close(fd)


def _dir(fd: int, parts: tuple[str, ...], hidden: set[tuple[str, ...]]) -> Iterator[Event]:
    for name in sorted(os.listdir(fd)):
        child = (*parts, name)
        if child in hidden:
            continue
        st = lstat(fd, name)
        if st is None:
            continue
        if is_whiteout(st):
            yield Change(child, fd, name, deleted=True)
        elif stat.S_ISDIR(st.st_mode):
            cfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            try:
                yield Change(child, fd, name, opaque=is_opaque(cfd))
                yield from _dir(cfd, child, hidden)
            finally:
                os.close(cfd)
        else:
            yield Change(child, fd, name)
