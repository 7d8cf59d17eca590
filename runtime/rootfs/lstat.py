"""What is at a list of paths of a container's filesystem, as lstat sees each: kind, permission bits, owner.

The builder asks before it writes a COPY's tar as a layer of its own: which directories on the way exist
(their owner and mode go into the layer unchanged, as overlayfs' copy-up would carry them), and whether
anything the copy writes meets a symlink or an entry of another kind (then it copies the classic way).
A missing parent, or one that is not a directory, makes the path `missing`: the caller asks for the
parents too and sees why. Blocking: run it in a thread.
"""
from __future__ import annotations

import stat
from typing import Literal

from pydantic import BaseModel

from runtime.errors import InvalidArgument, NotFound
from runtime.rootfs.view import Rootfs, locate

Kind = Literal["missing", "dir", "file", "symlink", "other"]


class PathEntry(BaseModel):
    path: str
    kind: Kind
    mode: int = 0  # permission bits, setuid/setgid/sticky included
    uid: int = 0
    gid: int = 0
    mtime: int = 0  # seconds


def _kind(mode: int) -> Kind:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def lstat_paths(rootfs: Rootfs, paths: list[str]) -> list[PathEntry]:
    out = []
    for path in paths:
        try:
            loc = locate(rootfs, path, follow_last=False)
        except (NotFound, InvalidArgument):
            out.append(PathEntry(path=path, kind="missing"))
            continue
        try:
            st = loc.lstat()
        finally:
            loc.close()
        if st is None:
            out.append(PathEntry(path=path, kind="missing"))
            continue
        out.append(PathEntry(path=path, kind=_kind(st.st_mode), mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                             gid=st.st_gid, mtime=int(st.st_mtime)))
    return out
