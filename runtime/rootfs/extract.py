"""Writing a tar into a container: `docker cp` to a container (PUT archive).

The tar is hostile until proven otherwise, and it is checked whole before anything
is written: absolute names, '..', device nodes, other entry types that are never
written, and entries that would go through a symlink or a file the same tar made
(`evil -> /`, then `evil/etc/passwd`) are refused with InvalidArgument naming the
entry. Then every entry's directory is resolved from the destination like a chroot
would (runtime.rootfs.view): symlinks the container already has are followed
without ever leaving the root, so `lib -> usr/lib` works as in Docker while
`x -> /etc` lands in the container's /etc. Entries under a bind mount's destination
go into its source, never past it; a read-only rootfs or bind refuses with
PermissionDenied. Refusals that depend on what is on disk (noOverwriteDirNonDir, a
hardlink to something missing) happen while writing and may leave what came before.

Blocking: run it in a thread.
"""
from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import BinaryIO

from pydantic import BaseModel

from runtime import untrusted_tar as ut
from runtime.errors import Internal, InvalidArgument, NotFound, PermissionDenied, RuntimeError_
from runtime.rootfs.view import Location, Parts, Rootfs, components, locate, open_dir

RULES = ut.Rules("archive")
# Failures an entry's name or kind causes against what the container (or the tar itself) already has there,
# rather than the host: a 400 naming the entry. Anything else (EIO, ENOSPC...) stays a server error.
_ENTRY_FAULTS = frozenset({errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY,
                           errno.ELOOP, errno.EMLINK})


class ExtractOptions(BaseModel):
    # Docker's noOverwriteDirNonDir: never replace a dir by a non-dir or the other way round.
    no_overwrite_dir_non_dir: bool = False
    # Docker's copyUIDGID: everything is owned by the container's user instead of the tar's ids.
    copy_uid_gid: bool = False


def _read_only(loc: Location, rootfs: Rootfs) -> PermissionDenied:
    parts = tuple(components(loc.path))
    in_volume = any(parts[: len(dest)] == dest for dest in rootfs.binds)
    return PermissionDenied(f"cannot write to {loc.path}: "
                            f"{'mounted volume' if in_volume else 'container rootfs'} is marked read-only")


def destination(rootfs: Rootfs, path: str) -> Parts:
    """The canonical components of the directory `path` names (followed to the end), checked for writing."""
    loc = locate(rootfs, path, follow_last=True)
    try:
        st = loc.lstat()
        if st is None:
            raise NotFound(f"{path}: no such file or directory")
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument("extraction point is not a directory")
        if loc.readonly:
            raise _read_only(loc, rootfs)
        return tuple(components(loc.path))
    finally:
        loc.close()


def _through(kinds: dict[Parts, str], parents: Parts, entry: str, what: str) -> None:
    for i in range(1, len(parents) + 1):
        kind = kinds.get(parents[:i])
        if kind == "symlink":
            raise RULES.refuse(entry, f"{what} goes through symlink {'/'.join(parents[:i])!r} of the same archive")
        if kind == "other":
            raise RULES.refuse(entry, f"{what} goes through non-directory {'/'.join(parents[:i])!r}")


def validate(tar: tarfile.TarFile) -> None:
    """Refuse the whole tar if any entry is unsafe, judging from the headers alone."""
    kinds: dict[Parts, str] = {}  # what this tar last put at each path
    for member in tar:
        entry = member.name
        parts = RULES.split(entry, entry)
        if not parts:
            if not member.isdir():
                raise RULES.refuse(entry, "the destination can only be a directory")
            continue
        target = RULES.check(member)
        _through(kinds, parts[:-1], entry, "path")
        if target:
            _through(kinds, target[:-1], entry, f"hardlink target {member.linkname!r}")
            if kinds.get(target) == "dir":
                raise RULES.refuse(entry, f"hardlink target {member.linkname!r} is a directory")
        kinds[parts] = "dir" if member.isdir() else "symlink" if member.issym() else "other"


class _Extractor:
    def __init__(self, rootfs: Rootfs, dest: Parts, opts: ExtractOptions) -> None:
        self.rootfs = rootfs
        self.dest = dest
        self.opts = opts
        self.owner = rootfs.owner if opts.copy_uid_gid else None
        self.buf = bytearray(ut.CHUNK)
        self.dir_times: list[tuple[Parts, int]] = []
        # Consecutive entries mostly share a directory: the last one stays open until
        # replaced, or until a dir is removed (it may be that one or above it).
        self._cached: tuple[Parts, Location] | None = None

    def close(self) -> None:
        self._forget()

    def _forget(self) -> None:
        if self._cached is not None:
            self._cached[1].close()
            self._cached = None

    def _mkdir(self, missing: Location) -> None:
        if missing.readonly:
            raise _read_only(missing, self.rootfs)
        # Missing parents are made as Docker makes them: 0755, owned by root.
        try:
            os.mkdir(missing.name, 0o755, dir_fd=missing.dir_fd)
        except FileExistsError:
            pass  # made meanwhile (the container, another copy): resolution looks at it again

    def _parent(self, parts: Parts) -> Location:
        if self._cached is not None and self._cached[0] == parts:
            return self._cached[1]
        loc = open_dir(self.rootfs, [*self.dest, *parts], mkdir=self._mkdir)
        if loc.readonly:
            loc.close()
            raise _read_only(loc, self.rootfs)
        self._forget()
        self._cached = (parts, loc)
        return loc

    def run(self, tar: tarfile.TarFile) -> None:
        for member in tar:
            try:
                self._entry(tar, member)
            except NotFound as e:
                # What the tar's headers could not tell: the container has a non-directory where the entry's
                # path needs a directory (etc/passwd/x).
                raise RULES.refuse(member.name, e.message) from None
            except RuntimeError_:
                raise
            except OSError as e:
                if e.errno in _ENTRY_FAULTS:
                    raise RULES.refuse(member.name, e.strerror or str(e)) from None
                raise Internal(f"writing archive entry {member.name!r} failed: {e}") from e
        for parts, ns in self.dir_times:
            # Deferred: creating children would otherwise bump them again.
            try:
                loc = open_dir(self.rootfs, [*self.dest, *parts])
            except NotFound:
                continue
            try:
                os.utime(loc.dir_fd, ns=(ns, ns))
            finally:
                loc.close()

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        entry = member.name
        parts = RULES.split(entry, entry)
        if not parts:
            return  # "." is the destination itself, which stays as it is
        target = RULES.check(member)
        parent = self._parent(parts[:-1])
        name = parts[-1]
        path = parent.path.rstrip("/") + "/" + name
        if tuple(components(path)) in self.rootfs.binds:
            if member.isdir():
                return  # a mount point stays as it is; what is below goes into its source
            raise InvalidArgument(f"cannot replace {path}: it is a mount point")
        existing = ut.lstat(parent.dir_fd, name)
        if self.opts.no_overwrite_dir_non_dir and existing is not None:
            if stat.S_ISDIR(existing.st_mode) and not member.isdir():
                raise InvalidArgument(f"cannot overwrite directory {path!r} with non-directory {entry!r}")
            if not stat.S_ISDIR(existing.st_mode) and member.isdir():
                raise InvalidArgument(f"cannot overwrite non-directory {path!r} with directory {entry!r}")
        replaced: os.stat_result | None = None
        if member.isdir():
            fd, _ = ut.open_new_dir(parent.dir_fd, name)
            try:
                ut.finish_fd(fd, member, times=False, owner=self.owner)
            finally:
                os.close(fd)
            self.dir_times.append((parts, ut.mtime_ns(member)))
        elif member.isreg():
            src = tar.extractfile(member)
            assert src is not None
            replaced = ut.write_file(parent.dir_fd, name, src, member, self.buf, self.owner)
        elif member.issym():
            replaced = ut.make_symlink(parent.dir_fd, name, member, self.owner)
        elif member.isfifo():
            replaced = ut.make_fifo(parent.dir_fd, name, member, self.owner)
        else:
            replaced = self._hardlink(parent, name, target, entry)
        if replaced is not None and stat.S_ISDIR(replaced.st_mode):
            self._forget()

    def _hardlink(self, parent: Location, name: str, target: Parts, entry: str) -> os.stat_result | None:
        what = f"hardlink target {'/'.join(target)!r}"
        try:
            tdir = open_dir(self.rootfs, [*self.dest, *target[:-1]])
        except NotFound:
            raise RULES.refuse(entry, f"{what} does not exist") from None
        try:
            st = ut.lstat(tdir.dir_fd, target[-1])
            if st is None:
                raise RULES.refuse(entry, f"{what} does not exist")
            if stat.S_ISDIR(st.st_mode):
                raise RULES.refuse(entry, f"{what} is a directory")
            existing = ut.lstat(parent.dir_fd, name)
            if existing is not None and (existing.st_dev, existing.st_ino) == (st.st_dev, st.st_ino):
                return None
            replaced = ut.remove(parent.dir_fd, name)
            try:
                os.link(target[-1], name, src_dir_fd=tdir.dir_fd, dst_dir_fd=parent.dir_fd, follow_symlinks=False)
            except OSError as e:
                if e.errno == errno.EXDEV:
                    raise RULES.refuse(entry, f"{what} is on another mount") from None
                raise
            return replaced
        finally:
            tdir.close()


def _open(spool: BinaryIO) -> tarfile.TarFile:
    spool.seek(0)
    return tarfile.open(fileobj=spool, mode="r|*")


def extract(rootfs: Rootfs, path: str, spool: BinaryIO, opts: ExtractOptions) -> None:
    """Unpack the tar in `spool` (plain, gzip, bzip2 or xz; seekable) into directory `path` of the container."""
    dest = destination(rootfs, path)
    if os.fstat(spool.fileno()).st_size == 0:
        return
    try:
        with _open(spool) as tar:
            validate(tar)
        extractor = _Extractor(rootfs, dest, opts)
        try:
            with _open(spool) as tar:
                extractor.run(tar)
        finally:
            extractor.close()
    except tarfile.TarError as e:
        raise InvalidArgument(f"invalid tar archive: {e}") from e
