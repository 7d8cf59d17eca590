"""The build cache's key for what COPY/ADD take from the context (blocking: run it in a thread).

Like dockerd's tarsum v1 (and BuildKit's content hash) the key covers, for every file
a source brings: its name relative to the source, its type, mode bits, uid and gid,
its size and the sha256 of its contents, or a symlink's target. It leaves out the
mtime, as tarsum v1 does: a fresh checkout, a `touch`, or the same tar sent again
gives the same key, while any change to what would land in the image gives another.
Names are relative to the source, never to the extraction directory, so the key is
the same across builds, contexts and daemon restarts.

A file source is hashed under its own name (COPY into a directory names the copy
after it, so a rename must change the key); a directory source by what is in it,
walked in byte order without following symlinks. A symlink source has already been
followed (engine.builder.context.sources): its target's contents are what is copied.

Content hashes are remembered per file (device, inode, size, mtime) in the caller's
memo, so the COPY steps of one build read each file once.
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from engine.builder.context.sources import ContextSource

Memo = dict[tuple[int, int, int, int], str]


def _content(path: Path, st: os.stat_result, memo: Memo) -> str:
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    digest = memo.get(key)
    if digest is None:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        memo[key] = digest
    return digest


def _record(h: "hashlib._Hash", name: str, path: Path, st: os.stat_result, memo: Memo) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind, size, extra = "f", st.st_size, _content(path, st, memo)
    elif stat.S_ISLNK(mode):
        kind, size, extra = "l", 0, os.readlink(path)
    elif stat.S_ISDIR(mode):
        kind, size, extra = "d", 0, ""
    elif stat.S_ISFIFO(mode):
        kind, size, extra = "p", 0, ""
    else:
        kind, size, extra = "?", 0, ""
    fields = (kind, name, f"{stat.S_IMODE(mode):o}", str(st.st_uid), str(st.st_gid), str(size), extra)
    h.update(b"\0".join(os.fsencode(f) for f in fields) + b"\n")


def _tree(h: "hashlib._Hash", root: Path, memo: Memo) -> None:
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: os.fsencode(e.name))
        below = []
        for entry in entries:
            rel = prefix + entry.name
            path = Path(entry.path)
            st = entry.stat(follow_symlinks=False)
            _record(h, rel, path, st, memo)
            if stat.S_ISDIR(st.st_mode):
                below.append((path, rel + "/"))
        stack.extend(reversed(below))


def checksum(sources: Sequence[ContextSource], memo: Memo | None = None) -> str:
    """One key ("sha256:<hex>") for the contents the sources bring, in order."""
    memo = {} if memo is None else memo
    total = hashlib.sha256()
    for source in sources:
        h = hashlib.sha256()
        st = os.stat(source.path)
        if stat.S_ISDIR(st.st_mode):
            _record(h, ".", source.path, st, memo)
            _tree(h, source.path, memo)
            kind = "dir"
        else:
            _record(h, source.name, source.path, st, memo)
            kind = "file"
        total.update(f"{kind}:{h.hexdigest()}\n".encode())
    return "sha256:" + total.hexdigest()
