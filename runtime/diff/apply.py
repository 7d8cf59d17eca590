"""Apply an (uncompressed) image layer tar to a snapshot.

Layer tars use the Docker/OCI conventions: `dir/.wh.NAME` deletes NAME from the
layers below, `dir/.wh..wh..opq` hides everything the layers below had in `dir`.
How those are realised depends on the snapshot's mounts:

* one overlay mount with an upperdir: the tar is written straight into the upper
  dir in overlayfs' own format (whiteouts become 0/0 char devices, opaque dirs get
  trusted.overlay.opaque=y), consulting the lowerdirs only to see the merged view;
* one bind mount: the tar is applied to the bind source as a plain tree (whiteouts
  delete, opaque markers delete what this layer did not write);
* anything else: the mounts are mounted on a temp dir and the tar is applied there
  as a plain tree.

Security model: the tar is hostile. Every filesystem operation is made relative to
a directory fd that was reached from the root one component at a time with
O_NOFOLLOW, and names passed to *at calls are single components, so no path can
resolve outside the root: not through '..', an absolute name, or a symlink found on
disk or created earlier by the same tar. Entries that try are refused with
InvalidArgument naming the entry. A refused layer may leave partial content inside
the root; the caller discards the snapshot.
"""
from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from runtime import mount as mountlib
from runtime import untrusted_tar as ut
from runtime.errors import (
    DataLoss,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    RuntimeError_,
)
from runtime.mount import Mount
from runtime.untrusted_tar import CHUNK, lstat as _lstat

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"

_DIR_FLAGS = ut.DIR_FLAGS
_NEW_FILE_FLAGS = ut.NEW_FILE_FLAGS
_RULES = ut.Rules("layer")
_refuse = _RULES.refuse
_split = _RULES.split


class _CountingReader:
    """Counts what tarfile pulls from the stream (the return value of apply_layer)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _lower_find(lower_fds: list[int], name: str) -> tuple[int, os.stat_result] | None:
    """The entry `name` visible through the lower stack of a dir, with the fd of
    the lower dir holding it; None if absent or whited out."""
    for lfd in lower_fds:
        st = _lstat(lfd, name)
        if st is None:
            continue
        return None if _is_whiteout(st) else (lfd, st)
    return None


def _lower_dirs(lower_fds: list[int], name: str) -> tuple[os.stat_result | None, list[int]]:
    """Merged lookup of `name` in the lower stack: the topmost visible entry and, if
    it is a dir, the fds of the lower dirs that overlayfs would merge under it."""
    first: os.stat_result | None = None
    fds: list[int] = []
    try:
        for lfd in lower_fds:
            st = _lstat(lfd, name)
            if st is None:
                continue
            if _is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                if first is None and not _is_whiteout(st):
                    first = st
                break  # a whiteout or non-dir ends the merge (and hides all below)
            if first is None:
                first = st
            fds.append(os.open(name, _DIR_FLAGS, dir_fd=lfd))
            if _is_opaque(fds[-1]):
                break
    except BaseException:
        _close_all(fds)
        raise
    return first, fds


@dataclass
class _Dir:
    """A directory of the tree being written, plus (overlay) the lower dirs visible under it."""

    fd: int
    lowers: list[int] = field(default_factory=list)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        _close_all(self.lowers)


class _Applier:
    def __init__(self, root: str, lowers: list[str], overlay: bool) -> None:
        self.overlay = overlay
        # Consecutive entries mostly share a parent, so the last resolved parent is
        # kept. Removing a dir or making one opaque marks it stale (it may be that
        # dir or below it); it is closed only when replaced, because the entry
        # being processed may still be using its fd.
        self._cached: tuple[tuple[str, ...], _Dir] | None = None
        self._stale = False
        # Native mode: what this layer wrote (entries and their ancestors), so an
        # opaque marker deletes only what came from below.
        self.written: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[tuple[str, ...], int]] = []
        self.buf = bytearray(CHUNK)
        self.lower_fds: list[int] = []
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for lower in lowers:
                self.lower_fds.append(os.open(lower, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._cached is not None:
            self._cached[1].close()
            self._cached = None
        os.close(self.root_fd)
        _close_all(self.lower_fds)

    def _invalidate(self) -> None:
        self._stale = True

    # -- resolution ---------------------------------------------------------------

    def _dir(self, parts: tuple[str, ...], entry: str, create: bool, what: str = "path") -> _Dir | None:
        """Open directory `parts` of the tree being written, never following symlinks.

        Missing dirs are created when `create`; in overlay mode a dir that exists only
        in the lowers is always created in the upper (copying its mode and owner), as
        overlayfs' copy-up would. Returns None for a missing dir when not `create`.
        Raises InvalidArgument when a component is a symlink or not a directory in
        the merged view. The result is owned by the cache: callers must not close it.
        """
        if self._cached is not None and not self._stale and self._cached[0] == parts:
            return self._cached[1]
        cur = _Dir(os.dup(self.root_fd), [os.dup(fd) for fd in self.lower_fds])
        for i, name in enumerate(parts):
            try:
                nxt = self._step(cur, name, entry, what, "/".join(parts[: i + 1]), create)
            finally:
                cur.close()
            if nxt is None:
                return None
            cur = nxt
        if self._cached is not None:
            self._cached[1].close()
        self._cached = (parts, cur)
        self._stale = False
        return cur

    def _step(self, cur: _Dir, name: str, entry: str, what: str, shown: str, create: bool) -> _Dir | None:
        st = _lstat(cur.fd, name)
        whiteout = st is not None and self.overlay and _is_whiteout(st)
        if st is not None and not whiteout:
            if stat.S_ISLNK(st.st_mode):
                raise _refuse(entry, f"{what} goes through symlink {shown!r}")
            if not stat.S_ISDIR(st.st_mode):
                raise _refuse(entry, f"{what} goes through non-directory {shown!r}")
            opened = _Dir(os.open(name, _DIR_FLAGS, dir_fd=cur.fd))
            try:
                if self.overlay and cur.lowers and not _is_opaque(opened.fd):
                    opened.lowers = _lower_dirs(cur.lowers, name)[1]
            except BaseException:
                opened.close()
                raise
            return opened
        lower_st, lowers = (None, []) if whiteout else _lower_dirs(cur.lowers, name)
        if lower_st is None and not create:
            return None
        opened = _Dir(-1, lowers)
        try:
            if lower_st is not None:
                if stat.S_ISLNK(lower_st.st_mode):
                    raise _refuse(entry, f"{what} goes through symlink {shown!r}")
                if not stat.S_ISDIR(lower_st.st_mode):
                    raise _refuse(entry, f"{what} goes through non-directory {shown!r}")
                os.mkdir(name, 0o700, dir_fd=cur.fd)
                opened.fd = os.open(name, _DIR_FLAGS, dir_fd=cur.fd)
                os.fchown(opened.fd, lower_st.st_uid, lower_st.st_gid)
                os.fchmod(opened.fd, stat.S_IMODE(lower_st.st_mode))
                return opened
            if whiteout:
                os.unlink(name, dir_fd=cur.fd)
            os.mkdir(name, 0o755, dir_fd=cur.fd)
            opened.fd = os.open(name, _DIR_FLAGS, dir_fd=cur.fd)
            if whiteout:
                # The name was deleted from the lowers by this layer: keep them hidden.
                os.setxattr(opened.fd, OPAQUE_XATTR, b"y")
            return opened
        except BaseException:
            opened.close()
            raise

    def _open_written(self, parts: tuple[str, ...]) -> int | None:
        """Open a dir of the written tree only (no lowers, no creation); None if gone."""
        fd = os.dup(self.root_fd)
        try:
            for name in parts:
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise
        return fd

    # -- primitives ---------------------------------------------------------------

    def _replaced(self, st: os.stat_result | None) -> os.stat_result | None:
        if st is not None and stat.S_ISDIR(st.st_mode):
            self._invalidate()
        return st

    def _remove(self, dir_fd: int, name: str) -> os.stat_result | None:
        """Delete whatever `name` is in the written tree; returns what was there."""
        return self._replaced(ut.remove(dir_fd, name))

    def _mark_written(self, parts: tuple[str, ...]) -> None:
        while parts and parts not in self.written:
            self.written.add(parts)
            parts = parts[:-1]

    # -- entries -------------------------------------------------------------------

    def apply(self, tar: tarfile.TarFile) -> None:
        for member in tar:
            try:
                self._entry(tar, member)
            except (RuntimeError_, tarfile.TarError):
                raise
            except OSError as e:
                raise Internal(f"applying layer entry {member.name!r} failed: {e}") from e
        for parts, ns in self.dir_times:
            # Deferred: creating children would otherwise bump them again.
            fd = self._open_written(parts)
            if fd is not None:
                try:
                    os.utime(fd, ns=(ns, ns))
                finally:
                    os.close(fd)

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        entry = member.name
        parts = _split(entry, entry)
        if not parts:
            if not member.isdir():
                raise _refuse(entry, "the root can only be a directory")
            ut.finish_fd(self.root_fd, member, times=False)
            self.dir_times.append(((), ut.mtime_ns(member)))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_MARKER:
                self._opaque(parts[:-1], entry)
            elif not base.startswith(WHITEOUT_META_PREFIX):  # other .wh..wh.* is aufs bookkeeping
                self._whiteout(parts[:-1], base[len(WHITEOUT_PREFIX) :], entry)
            return
        target = _RULES.check(member)
        if member.islnk():
            self._hardlink(parts, target, entry)
        else:
            parent = self._dir(parts[:-1], entry, create=True)
            assert parent is not None
            if member.isdir():
                self._directory(parent, parts, member)
            elif member.isreg():
                src = tar.extractfile(member)
                assert src is not None
                self._replaced(ut.write_file(parent.fd, base, src, member, self.buf))
            elif member.issym():
                self._replaced(ut.make_symlink(parent.fd, base, member))
            else:
                self._replaced(ut.make_fifo(parent.fd, base, member))
        if not self.overlay:
            self._mark_written(parts)

    def _directory(self, parent: _Dir, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        fd, replaced = ut.open_new_dir(parent.fd, parts[-1])  # an existing dir is merged
        try:
            if self.overlay and replaced:
                # Whatever the lowers have here was replaced (whited out or shadowed
                # by a non-dir earlier in this layer); a plain upper dir would merge it back.
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            ut.finish_fd(fd, member, times=False)
        finally:
            os.close(fd)
        self.dir_times.append((parts, ut.mtime_ns(member)))

    def _hardlink(self, parts: tuple[str, ...], target: tuple[str, ...], entry: str) -> None:
        what = f"hardlink target {'/'.join(target)!r}"
        tdir = self._dir(target[:-1], entry, create=False, what=what)
        if tdir is None:
            raise _refuse(entry, f"{what} does not exist")
        tname = target[-1]
        st = _lstat(tdir.fd, tname)
        if st is None or (self.overlay and _is_whiteout(st)):
            found = None if st is not None else _lower_find(tdir.lowers, tname)
            if found is None:
                raise _refuse(entry, f"{what} does not exist")
            # Only in a lower layer: copy it up so both names share one upper inode.
            self._copy_up(found[0], tdir.fd, tname, found[1], entry)
            st = os.stat(tname, dir_fd=tdir.fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            raise _refuse(entry, f"{what} is a directory")
        # The target must stay open while the destination's parent is resolved,
        # which may replace the cached dir: hold our own fd.
        tfd = os.dup(tdir.fd)
        try:
            parent = self._dir(parts[:-1], entry, create=True)
            assert parent is not None
            existing = _lstat(parent.fd, parts[-1])
            if existing is not None and (existing.st_dev, existing.st_ino) == (st.st_dev, st.st_ino):
                return
            self._remove(parent.fd, parts[-1])
            os.link(tname, parts[-1], src_dir_fd=tfd, dst_dir_fd=parent.fd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def _copy_data(self, src: int, dst: int) -> None:
        try:
            while os.copy_file_range(src, dst, CHUNK):
                pass
            return
        except OSError as e:
            # Not supported between these filesystems: carry on from the current offsets.
            if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
        while n := os.readv(src, [self.buf]):
            chunk = memoryview(self.buf)[:n]
            while chunk:
                chunk = chunk[os.write(dst, chunk) :]

    def _copy_up(self, lower_fd: int, upper_fd: int, name: str, st: os.stat_result, entry: str) -> None:
        mode = st.st_mode
        ns = st.st_mtime_ns
        if stat.S_ISREG(mode):
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=lower_fd)
            try:
                dst = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=upper_fd)
                try:
                    self._copy_data(src, dst)
                    os.fchown(dst, st.st_uid, st.st_gid)
                    os.fchmod(dst, stat.S_IMODE(mode))
                    try:
                        for attr in os.listxattr(src):
                            if attr == "security.capability" or attr.startswith("user."):
                                os.setxattr(dst, attr, os.getxattr(src, attr))
                    except OSError:
                        pass  # best effort, like xattrs from the tar
                    os.utime(dst, ns=(st.st_atime_ns, ns))
                finally:
                    os.close(dst)
            finally:
                os.close(src)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=lower_fd), name, dir_fd=upper_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=upper_fd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, ns), dir_fd=upper_fd, follow_symlinks=False)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(name, 0o600, dir_fd=upper_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=upper_fd, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=upper_fd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, ns), dir_fd=upper_fd, follow_symlinks=False)
        else:
            raise _refuse(entry, "hardlink target is not a regular file, symlink or fifo")

    def _whiteout(self, parent_parts: tuple[str, ...], name: str, entry: str) -> None:
        if name in ("", ".", ".."):
            raise _refuse(entry, "invalid whiteout name")
        parent = self._dir(parent_parts, entry, create=False)
        if parent is None:
            return  # nothing there to delete
        self._remove(parent.fd, name)
        if self.overlay and _lower_find(parent.lowers, name) is not None:
            os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent.fd)

    def _opaque(self, parts: tuple[str, ...], entry: str) -> None:
        d = self._dir(parts, entry, create=True)
        assert d is not None
        if self.overlay:
            try:
                if parts:
                    os.setxattr(d.fd, OPAQUE_XATTR, b"y")
                else:
                    self._opaque_root()
            except OSError as e:
                raise FailedPrecondition(f"cannot mark {'/'.join(parts) or '/'} opaque for {entry!r}: {e}") from e
            self._invalidate()  # its lower stack is now hidden
            return
        self._mark_written(parts)
        self._prune(os.dup(d.fd), parts)

    def _opaque_root(self) -> None:
        """overlayfs ignores the opaque xattr on its root dir, so hide the lowers'
        top-level entries with whiteouts instead, and make the top-level dirs this
        layer already wrote opaque (later entries replace whiteouts as usual)."""
        for name in os.listdir(self.root_fd):
            st = _lstat(self.root_fd, name)
            if st is not None and stat.S_ISDIR(st.st_mode):
                fd = os.open(name, _DIR_FLAGS, dir_fd=self.root_fd)
                try:
                    os.setxattr(fd, OPAQUE_XATTR, b"y")
                finally:
                    os.close(fd)
        for lfd in self.lower_fds:
            for name in os.listdir(lfd):
                if _lstat(self.root_fd, name) is None:
                    os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=self.root_fd)

    def _prune(self, fd: int, parts: tuple[str, ...]) -> None:
        """Native opaque: delete everything under the dir `fd` this layer did not write.

        Takes ownership of `fd`. Iterative, so a deep hostile tree cannot exhaust the stack.
        """
        stack = [(fd, parts)]
        try:
            while stack:
                dfd, dparts = stack.pop()
                try:
                    for child in os.listdir(dfd):
                        cparts = (*dparts, child)
                        if cparts not in self.written:
                            self._remove(dfd, child)
                            continue
                        st = _lstat(dfd, child)
                        if st is not None and stat.S_ISDIR(st.st_mode):
                            stack.append((os.open(child, _DIR_FLAGS, dir_fd=dfd), cparts))
                finally:
                    os.close(dfd)
        finally:
            _close_all([f for f, _ in stack])


def _apply_tree(reader: _CountingReader, root: str, lowers: list[str], overlay: bool) -> None:
    applier = _Applier(root, lowers, overlay)
    try:
        try:
            tar = tarfile.open(fileobj=reader, mode="r|")
        except tarfile.ReadError:
            if reader.count == 0:
                return  # a zero-byte layer is an empty layer
            raise
        with tar:
            applier.apply(tar)
    finally:
        applier.close()


def apply_layer(fileobj: BinaryIO, mounts: list[Mount]) -> int:
    """Unpack an uncompressed layer tar onto the snapshot exposed by `mounts`.

    Blocking (run it in a thread). Returns the number of bytes read from `fileobj`,
    which is drained to EOF so a digesting wrapper sees the whole stream.
    Raises InvalidArgument for entries that are unsafe or not allowed (device nodes),
    DataLoss for a corrupt or truncated tar.
    """
    for m in mounts:
        if mountlib.parse_options(m.options).flags & mountlib.MS_RDONLY:
            raise InvalidArgument(f"cannot apply a layer to read-only mount {m.source!r}")
    reader = _CountingReader(fileobj)
    try:
        if len(mounts) == 1 and mounts[0].type == "overlay":
            dirs = mountlib.overlay_dirs(mounts[0])
            if dirs is None:
                raise InvalidArgument("cannot apply a layer to an overlay without upperdir (read-only)")
            _apply_tree(reader, dirs[0], dirs[1], overlay=True)
        elif len(mounts) == 1 and mountlib.is_bind(mounts[0]):
            _apply_tree(reader, mounts[0].source, [], overlay=False)
        else:
            with mountlib.mounted(mounts) as target:
                _apply_tree(reader, target, [], overlay=False)
        while reader.read(CHUNK):
            pass
    except tarfile.TarError as e:
        raise DataLoss(f"invalid layer tar: {e}") from e
    return reader.count
