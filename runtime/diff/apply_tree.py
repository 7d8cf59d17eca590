"""Writing a layer tar's entries into a directory tree, one fd-relative step at a time.

The tree is either an overlay upper dir written in overlayfs' own format (see
apply_overlay) or a plain tree where whiteouts delete and opaque markers delete what
this layer did not write; apply.py chooses which and feeds the tar stream in.

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

from runtime import untrusted_tar as ut
from runtime.diff.apply_overlay import (
    OPAQUE_XATTR,
    close_all,
    copy_up,
    is_opaque,
    is_whiteout,
    lower_dirs,
    lower_find,
)
from runtime.errors import FailedPrecondition, Internal, InvalidArgument, RuntimeError_
from runtime.untrusted_tar import CHUNK
from runtime.untrusted_tar import lstat as _lstat

# The Docker/OCI layer conventions: `dir/.wh.NAME` deletes NAME from the layers
# below, `dir/.wh..wh..opq` hides everything the layers below had in `dir`.
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"

_DIR_FLAGS = ut.DIR_FLAGS
_RULES = ut.Rules("layer", devices=ut.CONTAINER_DEVICES)
_refuse = _RULES.refuse
_split = _RULES.split


@dataclass
class _Dir:
    """A directory of the tree being written, plus (overlay) the lower dirs visible under it."""

    fd: int
    lowers: list[int] = field(default_factory=list)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        close_all(self.lowers)


class TreeApplier:
    """Applies one layer tar to the tree at `root`, then must be closed.

    With `overlay`, `root` is an upper dir and `lowers` its lowerdirs, topmost first.
    """

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
        close_all(self.lower_fds)

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
        whiteout = st is not None and self.overlay and is_whiteout(st)
        if st is not None and not whiteout:
            if stat.S_ISLNK(st.st_mode):
                raise _refuse(entry, f"{what} goes through symlink {shown!r}")
            if not stat.S_ISDIR(st.st_mode):
                raise _refuse(entry, f"{what} goes through non-directory {shown!r}")
            opened = _Dir(os.open(name, _DIR_FLAGS, dir_fd=cur.fd))
            try:
                if self.overlay and cur.lowers and not is_opaque(opened.fd):
                    opened.lowers = lower_dirs(cur.lowers, name)[1]
            except BaseException:
                opened.close()
                raise
            return opened
        lower_st, lowers = (None, []) if whiteout else lower_dirs(cur.lowers, name)
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
                if e.errno in (errno.ENAMETOOLONG, errno.EINVAL):
                    # The archive's fault (a name no filesystem takes), not ours.
                    raise InvalidArgument(f"applying layer entry {member.name!r} failed: "
                                          f"{(e.strerror or str(e)).lower()}") from e
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
            elif member.ischr():
                self._replaced(ut.make_device(parent.fd, base, member))
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
        if st is None or (self.overlay and is_whiteout(st)):
            found = None if st is not None else lower_find(tdir.lowers, tname)
            if found is None:
                raise _refuse(entry, f"{what} does not exist")
            # Only in a lower layer: copy it up so both names share one upper inode.
            if not copy_up(found[0], tdir.fd, tname, found[1], self.buf):
                raise _refuse(entry, "hardlink target is not a regular file, symlink or fifo")
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

    def _whiteout(self, parent_parts: tuple[str, ...], name: str, entry: str) -> None:
        if name in ("", ".", ".."):
            raise _refuse(entry, "invalid whiteout name")
        parent = self._dir(parent_parts, entry, create=False)
        if parent is None:
            return  # nothing there to delete
        self._remove(parent.fd, name)
        if self.overlay and lower_find(parent.lowers, name) is not None:
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
            close_all([f for f, _ in stack])
