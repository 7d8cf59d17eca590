"""Unpacking a build context tar into its directory, as it streams in (blocking: run it in a thread).

The tar is hostile until proven otherwise; nothing it says can write outside the
context directory:
- names are cleaned as dockerd does (a leading '/' is dropped: "/etc/x" lands at
  "<ctx>/etc/x"); a name that climbs above the root with '..' is refused;
- every entry's parent is reached one component at a time from the root's fd with
  O_NOFOLLOW, so an entry that would go through a symlink (or a file) is refused,
  whatever made that symlink; missing parents are made 0755, owned by root;
- symlinks are written as they are, whatever their target: they are data here, and
  COPY resolves them inside the context (engine.builder.context.paths.resolve);
- a hardlink must name a file this tar already wrote, by a path inside the context;
- device nodes are not created (a build context has no use for them; the entry is
  skipped); other unknown entry types are refused.
Owner, mode, xattrs and mtime are kept as the tar has them (COPY's checksums and
--chown come later); the writes themselves are the runtime's fd-relative primitives.

.dockerignore is applied while unpacking: once the `.dockerignore` entry has been
written, excluded entries are not written at all; what came before it in the tar is
pruned at the end. The Dockerfile and .dockerignore themselves are always written (the
builder reads them; dockerd then drops them from the context if they are excluded).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any, BinaryIO, cast

from engine.builder.context.checksum import Memo
from engine.builder.context.dockerignore import DockerIgnore
from engine.builder.context.paths import escapes, relative, resolve
from engine.builder.context.tar_reader import Data, members
from engine.errors import InvalidArgument
from runtime.client import untrusted_tar as ut

IGNORE_FILE = ".dockerignore"
_MAX_IGNORE_FILE = 1 << 20
_NOT_A_DIR = (errno.ENOTDIR, errno.ELOOP)


class _Hashing(io.RawIOBase):
    """A tar member's data, hashed as write_file reads it."""

    def __init__(self, src: Data) -> None:
        self.src = src
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = self.src.readinto(buf)
        if n:
            self.digest.update(memoryview(buf)[:n])
        return n


def _refuse(entry: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"refusing build context entry {entry!r}: {why}")


class Extractor:
    """One context directory being filled from one tar stream."""

    def __init__(self, root: Path, keep: frozenset[str]) -> None:
        self.root = root
        self.root_fd = os.open(root, ut.DIR_FLAGS)
        self.keep = keep | {IGNORE_FILE}
        self.ignore: DockerIgnore | None = None
        self._before: list[str] = []  # written while no .dockerignore was known: pruned at the end
        self._buf = bytearray(ut.CHUNK)
        self._dir_times: list[tuple[str, int]] = []
        self._cached: tuple[str, int] | None = None  # the last parent directory's fd
        # Each file's sha256 as it streams by, as dockerd's tarsum is taken during the upload: COPY's
        # cache keys then read no file again (engine.builder.context.checksum's memo).
        self.hashes: Memo = {}

    def close(self) -> None:
        self._forget()
        os.close(self.root_fd)

    def _forget(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _open_dir(self, parts: list[str], entry: str, create: bool) -> int:
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts):
                try:
                    nfd = os.open(part, ut.DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nfd = os.open(part, ut.DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in _NOT_A_DIR:
                        raise _refuse(entry, f"goes through {'/'.join(parts[:i + 1])!r}, "
                                             "which is a symlink or not a directory") from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, parent: str, entry: str) -> int:
        if self._cached is not None and self._cached[0] == parent:
            return self._cached[1]
        fd = self._open_dir(parent.split("/") if parent else [], entry, create=True)
        self._forget()
        self._cached = (parent, fd)
        return fd

    def run(self, stream: io.BufferedReader) -> None:
        try:
            # The docker CLI, given a -f outside the context, appends that file and ends the tar
            # right after its data: no padding, no end-of-archive blocks. Go's reader (and so
            # dockerd) takes that as the end; so does tar_reader.
            for member, data in members(stream):
                try:
                    self._entry(member, data)
                except OSError as e:
                    raise InvalidArgument(f"error unpacking build context entry {member.name!r}: "
                                          f"{e.strerror or e}") from e
        except (tarfile.TarError, EOFError) as e:
            raise InvalidArgument(f"error reading the build context: {e}") from e
        finally:
            self._forget()
        self._finish()

    def _entry(self, member: tarfile.TarInfo, data: Data | None) -> None:
        entry = member.name
        if "\0" in entry or "\0" in member.linkname:
            raise _refuse(entry, "name contains a NUL byte")
        name = relative(entry)
        if escapes(name):
            raise _refuse(entry, "the path climbs out of the context")
        if name == "." or member.ischr() or member.isblk():
            return  # the root stays as it is (mode 0700); device nodes are never made
        if not (member.isreg() or member.isdir() or member.issym() or member.isfifo() or member.islnk()):
            raise _refuse(entry, f"unsupported entry type {member.type!r}")
        if self.ignore is not None and name not in self.keep and self.ignore.excludes(name):
            if data is not None:
                self._drain(data)
            return
        parent, _, base = name.rpartition("/")
        fd = self._parent(parent, entry)
        replaced: os.stat_result | None = None
        if member.isdir():
            dfd, _ = ut.open_new_dir(fd, base)
            try:
                ut.finish_fd(dfd, member, times=False)
            finally:
                os.close(dfd)
            self._dir_times.append((name, ut.mtime_ns(member)))
        elif data is not None:
            hashing = _Hashing(data)
            replaced = ut.write_file(fd, base, cast(BinaryIO, hashing), member, self._buf)
            self._remember(fd, base, hashing)
        elif member.issym():
            replaced = ut.make_symlink(fd, base, member)
        elif member.isfifo():
            replaced = ut.make_fifo(fd, base, member)
        else:
            replaced = self._hardlink(fd, base, member)
        if replaced is not None and stat.S_ISDIR(replaced.st_mode):
            self._forget()  # the cached parent may have been inside what was replaced
        if self.ignore is None:
            self._before.append(name)
            if name == IGNORE_FILE and member.isreg():
                self._load_ignore()

    def _remember(self, fd: int, base: str, hashing: _Hashing) -> None:
        # The file is new (written whole, never into), so its identity names exactly these bytes.
        st = ut.lstat(fd, base)
        if st is not None:
            self.hashes[(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)] = hashing.digest.hexdigest()

    def _drain(self, data: Data) -> None:
        """Read an excluded file's data (the stream passes it anyway): a short one fails here, as it would written."""
        while data.readinto(self._buf):
            pass

    def _hardlink(self, fd: int, base: str, member: tarfile.TarInfo) -> os.stat_result | None:
        entry = member.name
        target = relative(member.linkname)
        if escapes(target) or target == ".":
            raise _refuse(entry, f"hardlink target {member.linkname!r} is outside the context")
        tparent, _, tbase = target.rpartition("/")
        missing = _refuse(entry, f"hardlink target {member.linkname!r} is not a file of this context")
        try:
            tfd = self._open_dir(tparent.split("/") if tparent else [], entry, create=False)
        except FileNotFoundError:
            raise missing from None
        try:
            st = ut.lstat(tfd, tbase)
            if st is None or stat.S_ISDIR(st.st_mode):
                raise missing
            existing = ut.lstat(fd, base)
            if existing is not None and (existing.st_dev, existing.st_ino) == (st.st_dev, st.st_ino):
                return None  # already that file (a link to itself, or a tar that repeats one)
            replaced = ut.remove(fd, base)
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=fd, follow_symlinks=False)
            return replaced
        finally:
            os.close(tfd)

    def _load_ignore(self) -> None:
        fd = os.open(IGNORE_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.root_fd)
        with os.fdopen(fd, "rb") as f:
            data = f.read(_MAX_IGNORE_FILE + 1)
        if len(data) > _MAX_IGNORE_FILE:
            raise InvalidArgument(f"{IGNORE_FILE} is larger than {_MAX_IGNORE_FILE} bytes")
        self.ignore = DockerIgnore.parse(data.decode("utf-8", "replace"))

    def _finish(self) -> None:
        if self.ignore is None and self._before:
            path = resolve(self.root, IGNORE_FILE)
            if path.is_file():  # a symlink to a file of the context: dockerd reads it too
                with path.open("rb") as f:
                    self.ignore = DockerIgnore.parse(f.read(_MAX_IGNORE_FILE).decode("utf-8", "replace"))
        if self.ignore is not None:
            self._prune(self.ignore)
        for name, ns in self._dir_times:
            # Deferred: writing the children would have moved them again.
            try:
                fd = self._open_dir(name.split("/"), name, create=False)
            except (FileNotFoundError, InvalidArgument):
                continue  # replaced or pruned since
            try:
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)

    def _prune(self, ignore: DockerIgnore) -> None:
        """Remove what was written before the .dockerignore was known and that it excludes."""
        doomed = [n for n in self._before if n not in self.keep and ignore.excludes(n)]
        doomed.sort(key=lambda n: n.count("/"), reverse=True)  # children before their directories
        for name in doomed:
            parent, _, base = name.rpartition("/")
            try:
                fd = self._open_dir(parent.split("/") if parent else [], name, create=False)
            except (FileNotFoundError, InvalidArgument):
                continue  # its directory went first, or was replaced by a symlink: nothing to follow
            try:
                st = ut.lstat(fd, base)
                if st is None:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    # Not empty: an exception brought something below it back, so the directory stays.
                    with contextlib.suppress(OSError):
                        os.rmdir(base, dir_fd=fd)
                else:
                    os.unlink(base, dir_fd=fd)
            finally:
                os.close(fd)
        self._before = []

