"""The tar a COPY or ADD puts into the step's filesystem, written in a worker thread.

Entries are named from the root (`app/bin/tool`), owned by the `--chown` ids (root by default, as
Docker's COPY does), with `--chmod` over every file and directory when given. Directories the
image does not have yet come first; ones it has are left out, so their owner and mode stay as the
image has them. ADD's local archives are unpacked into the destination rather than copied; their
entries are re-rooted there and names climbing out with `..` or `/` are refused.
"""
from __future__ import annotations

import io
import lzma
import os
import posixpath
import stat
import tarfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.errors import InvalidArgument

_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


@dataclass(frozen=True)
class Source:
    """One thing to copy: a host path (file, dir, symlink), in-memory content, or an archive to unpack."""

    dest: str  # the path from the root it lands at (for a dir: what its contents go under)
    path: Path | None = None
    content: bytes | None = None
    mode: int = 0o644
    unpack: bool = False  # ADD of a local archive
    follow: bool = True  # a context symlink named directly is copied as its target's contents
    name: str = ""  # the name it gets when copied into a directory


@dataclass(frozen=True)
class Ownership:
    uid: int = 0
    gid: int = 0
    chmod: int | None = None


def is_archive(path: Path) -> bool:
    """A local file ADD unpacks: a tar, or a tar compressed with gzip, bzip2 or xz. Anything else, a
    compressed file that holds no tar included, is copied as it is."""
    try:
        with open(path, "rb") as f:
            head = f.read(tarfile.BLOCKSIZE)
            if head.startswith(_ARCHIVE_MAGIC):
                f.seek(0)
                with tarfile.open(fileobj=f, mode="r:*") as tar:
                    tar.next()
                return True
    except (OSError, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError):
        return False
    if len(head) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _clean(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidArgument(f"the archive entry {name!r} climbs out of its destination")
    return "/".join(parts)


class CopyTar:
    def __init__(self, out: BinaryIO, owner: Ownership) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.owner = owner
        self.written: set[str] = set()

    def close(self) -> None:
        self.tar.close()

    def _own(self, info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname = self.owner.uid, self.owner.gid, "", ""
        if self.owner.chmod is not None and info.type in (tarfile.REGTYPE, tarfile.DIRTYPE):
            info.mode = self.owner.chmod
        return info

    def directory(self, name: str, mode: int = 0o755) -> None:
        """A directory the image lacks, made now (its time the build's, as dockerd's are)."""
        name = name.strip("/")
        if not name or name in self.written:
            return
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
        self.tar.addfile(self._own(info))
        self.written.add(name)

    def existing_directory(self, name: str, mode: int, uid: int, gid: int, mtime: int) -> None:
        """A directory the image has, as it has it: a layer that names a directory sets its owner and mode."""
        name = name.strip("/")
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, mode, uid, gid, mtime
        self.tar.addfile(info)
        self.written.add(name)

    def add(self, source: Source) -> None:
        if source.content is not None:
            info = tarfile.TarInfo(source.dest.strip("/"))
            info.size, info.mode = len(source.content), source.mode
            self.tar.addfile(self._own(info), io.BytesIO(source.content))
            return
        assert source.path is not None
        if source.unpack:
            self._unpack(source.path, source.dest)
            return
        path = source.path
        st = os.stat(path) if source.follow else os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            # A directory's contents are copied, not the directory: where they go keeps its own metadata.
            for rel, entry in walk(path):
                self._entry(posixpath.join(source.dest, rel), entry)
        else:
            self._entry(source.dest, path, follow=source.follow)

    def _entry(self, name: str, path: Path, follow: bool = False) -> None:
        info = self.tar.gettarinfo(str(path), arcname=name.strip("/"))
        if follow and info.issym():
            info = self.tar.gettarinfo(str(path.resolve()), arcname=name.strip("/"))
        if info.type not in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE):
            return  # sockets and devices are not build content (a context never holds devices)
        if info.isdir():
            if info.name in self.written:
                return
            self.written.add(info.name)
        if info.isreg():
            with open(path if not follow else path.resolve(), "rb") as f:
                self.tar.addfile(self._own(info), f)
        else:
            self.tar.addfile(self._own(info))

    def _unpack(self, archive: Path, dest: str) -> None:
        with tarfile.open(archive, mode="r:*") as src:
            for member in src:
                name = _clean(member.name)
                if not name:
                    continue
                member.name = posixpath.join(dest.strip("/"), name)
                if member.islnk():
                    member.linkname = posixpath.join(dest.strip("/"), _clean(member.linkname))
                if member.isreg():
                    self.tar.addfile(member, src.extractfile(member))
                elif member.type in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE):
                    self.tar.addfile(member)
                # An ADD'ed archive keeps its own owners, as Docker's does; its devices are left out, as the
                # step's files go in by docker cp's rules, which make no device node.


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(path relative to root, path) below root, parents first, in name order."""
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in reversed(entries):
            sub = posixpath.join(rel, entry.name) if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append(sub)
        for entry in entries:
            sub = posixpath.join(rel, entry.name) if rel else entry.name
            yield sub, Path(entry.path)
