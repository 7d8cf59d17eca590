"""Reading a container's files: the stat `docker cp` needs, a tar of one path, a tar of the whole rootfs.

Paths follow Docker's rules: every component but the last is followed (inside the
root); the last is followed only when the path ends in '/' or '/.', so a symlink
is copied as a symlink. The tar's top entry is named after the path as asked for
(Go's filepath.Base of it), whatever it resolved to.

Blocking: run it in a thread.
"""
from __future__ import annotations

import datetime as dt
import errno
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from runtime.errors import InvalidArgument, NotFound
from runtime.rootfs.view import Bind, Location, Parts, Rootfs, bind_location, components, locate
from runtime.untrusted_tar import CHUNK, DIR_FLAGS

# Go's os.FileMode type bits, which is what Docker puts in a path stat.
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_NAMED_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHAR_DEVICE = 1 << 21
GO_STICKY = 1 << 20

_CAPABILITY = "security.capability"


class PathStat(BaseModel):
    """Docker's ContainerPathStat (X-Docker-Container-Path-Stat)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    name: str
    size: int
    mode: int  # Go os.FileMode bits
    mtime: str  # RFC 3339, UTC
    link_target: str = Field("", alias="linkTarget")


def go_mode(mode: int) -> int:
    out = stat.S_IMODE(mode) & 0o777
    kind = stat.S_IFMT(mode)
    out |= {stat.S_IFDIR: GO_DIR, stat.S_IFLNK: GO_SYMLINK, stat.S_IFIFO: GO_NAMED_PIPE, stat.S_IFSOCK: GO_SOCKET,
            stat.S_IFBLK: GO_DEVICE, stat.S_IFCHR: GO_DEVICE | GO_CHAR_DEVICE}.get(kind, 0)
    for bit, go in ((stat.S_ISUID, GO_SETUID), (stat.S_ISGID, GO_SETGID), (stat.S_ISVTX, GO_STICKY)):
        if mode & bit:
            out |= go
    return out


def rfc3339(ns: int) -> str:
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.timezone.utc)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def base_name(path: str) -> str:
    """Go's filepath.Base of the path as asked for: '/a/b/' → 'b', '/a/b/.' → '.', '/' → '/'."""
    parts = [p for p in path.split("/") if p]
    return parts[-1] if parts else "/"


def follows_last(path: str) -> bool:
    """'dir/' and 'dir/.' name what a symlink points to; a bare 'link' names the link."""
    return path in ("", ".") or path.endswith("/") or path.endswith("/.")


def _locate(rootfs: Rootfs, path: str) -> tuple[Location, os.stat_result]:
    loc = locate(rootfs, path, follow_last=follows_last(path))
    st = loc.lstat()
    if st is None:
        loc.close()
        raise NotFound(f"{path}: no such file or directory")
    if follows_last(path) and not stat.S_ISDIR(st.st_mode):
        loc.close()
        raise InvalidArgument(f"{path}: not a directory")  # 'file/' as the kernel sees it
    return loc, st


def stat_path(rootfs: Rootfs, path: str) -> PathStat:
    """NotFound if nothing is there. A symlink's linkTarget is where it leads, fully resolved in the root."""
    loc, st = _locate(rootfs, path)
    try:
        target = ""
        if stat.S_ISLNK(st.st_mode):
            try:
                full = locate(rootfs, loc.path, follow_last=True)
                full.close()
                target = full.path
            except NotFound:
                # Dangling through a missing dir: what it says, made absolute.
                target = posixpath.normpath(posixpath.join(posixpath.dirname(loc.path),
                                                           os.readlink(loc.name, dir_fd=loc.dir_fd)))
    finally:
        loc.close()
    return PathStat(name=base_name(path), size=st.st_size, mode=go_mode(st.st_mode), mtime=rfc3339(st.st_mtime_ns),
                    linkTarget=target)


class _Padded:
    """The first `size` bytes of a file, zero-filled if it shrank while being read (a running container's log)."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._left = size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        out = bytearray()
        while len(out) < n:
            data = os.read(self._fd, n - len(out))
            if not data:
                out += bytes(n - len(out))
                break
            out += data
        self._left -= n
        return bytes(out)


class _TarWriter:
    def __init__(self, out: BinaryIO, binds: dict[Parts, Bind]) -> None:
        # Not the "w|" stream mode: its buffer flushes again when garbage collected, into a
        # reader that may be long gone. Plain "w" only needs tell() of `out`.
        # copybufsize goes on to TarFile(), which takes it; typeshed's open() overloads leave it out.
        self.tar = tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                                copybufsize=CHUNK)
        self.binds = binds
        self.links: dict[tuple[int, int], str] = {}

    def close(self) -> None:
        self.tar.close()

    def _names(self, fd: int, parts: Parts) -> Iterator[str]:
        """A dir's entries, plus the bind mount points runc has not made yet (never started)."""
        mounted = {dest[-1] for dest in self.binds if dest[:-1] == parts}
        return iter(sorted(set(os.listdir(fd)) | mounted))

    def add_tree(self, loc: Location, arcname: str, canonical: Parts, top: bool = True) -> None:
        """`loc`'s entry and, for a dir, everything below it (entries named under `arcname`).

        Without `top` the entry itself is left out and its children are named from "" (an export).
        Iterative, so a deep tree cannot exhaust the stack; one fd is open per level.
        """
        st = loc.lstat()
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            self._entry(loc.dir_fd, loc.name, st, arcname)
            return
        fd = os.open(loc.name, DIR_FLAGS, dir_fd=loc.dir_fd)
        stack: list[tuple[int, Iterator[str], str, Parts]] = [(fd, iter(()), "", canonical)]
        try:
            if top:
                self._entry(fd, ".", st, arcname)
            stack[0] = (fd, self._names(fd, canonical), arcname if top else "", canonical)
            while stack:
                dfd, names, prefix, parts = stack[-1]
                name = next(names, None)
                if name is None:
                    os.close(dfd)
                    stack.pop()
                    continue
                child_parts = (*parts, name)
                # The root's own entry is named "/": its children "/bin", as dockerd names them.
                child_arc = f"{prefix.rstrip('/')}/{name}" if prefix else name
                bind = self.binds.get(child_parts)
                child = bind_location(bind, "/" + "/".join(child_parts)) if bind else Location(dfd, name, "", False)
                try:
                    cst = child.lstat()
                    if cst is None:
                        continue  # gone meanwhile (a running container)
                    if stat.S_ISDIR(cst.st_mode):
                        cfd = os.open(child.name, DIR_FLAGS, dir_fd=child.dir_fd)
                        try:
                            self._entry(cfd, ".", cst, child_arc)
                            stack.append((cfd, self._names(cfd, child_parts), child_arc, child_parts))
                        except BaseException:
                            os.close(cfd)
                            raise
                    else:
                        self._entry(child.dir_fd, child.name, cst, child_arc)
                finally:
                    if bind:
                        child.close()
        finally:
            for dfd, *_ in stack:
                os.close(dfd)

    def _entry(self, dir_fd: int, name: str, st: os.stat_result, arcname: str) -> None:
        ti = tarfile.TarInfo(arcname)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.mtime = int(st.st_mtime)
        mode = st.st_mode
        if stat.S_ISREG(mode):
            ident = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                first = self.links.setdefault(ident, arcname)
                if first != arcname:
                    ti.type, ti.linkname = tarfile.LNKTYPE, first
                    self.tar.addfile(ti)
                    return
            self._file(dir_fd, name, ti)
            return
        if stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return  # sockets have no tar form
        self.tar.addfile(ti)

    def _file(self, dir_fd: int, name: str, ti: tarfile.TarInfo) -> None:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP):  # gone, or replaced by a symlink, meanwhile
                return
            raise
        try:
            ti.size = os.fstat(fd).st_size
            try:
                cap = os.getxattr(fd, _CAPABILITY)
                ti.pax_headers = {f"SCHILY.xattr.{_CAPABILITY}": cap.decode("utf-8", "surrogateescape")}
            except OSError:
                pass  # none (the common case) or not supported
            self.tar.addfile(ti, _Padded(fd, ti.size))
        finally:
            os.close(fd)


def write_path(rootfs: Rootfs, path: str, out: BinaryIO) -> None:
    """A tar of `path` (a file, or a dir and what is below it, bind mounts included) into `out`."""
    loc, _ = _locate(rootfs, path)
    try:
        writer = _TarWriter(out, rootfs.binds)
        writer.add_tree(loc, base_name(path), tuple(components(loc.path)))
        writer.close()
    finally:
        loc.close()


def write_export(rootfs: Rootfs, out: BinaryIO) -> None:
    """A tar of the whole rootfs, without what is mounted in it (as `docker export`)."""
    root = locate(rootfs, "/")
    try:
        writer = _TarWriter(out, {})
        writer.add_tree(root, "", (), top=False)
        writer.close()
    finally:
        root.close()
