"""The rules every untrusted tar the runtime unpacks obeys, and the writes of its entries.

Shared by layer application (runtime/diff/apply.py) and copying into containers
(runtime/rootfs/extract.py). Names are checked without touching the disk; every
write takes a directory fd and a single-component name, never follows a symlink at
that name, and replaces what was there rather than writing into it (an existing
file may be a hardlink shared with something else).
"""
from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass
from typing import IO

from runtime.errors import InvalidArgument
from runtime.snapshots.fsutil import remove_tree

CHUNK = 1 << 20

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_PREFIX = "SCHILY.xattr."

# (uid, gid) every entry gets instead of its own, when the caller imposes one.
Owner = tuple[int, int] | None


# The character devices runc gives every container (null, zero, full, random, urandom, tty, console, ptmx): a
# rootfs tarball made by debootstrap or `tar` of a chroot carries them, and a node for one of them opens nothing
# the container does not have already. Any other device node is refused.
CONTAINER_DEVICES = frozenset({(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)})


@dataclass(frozen=True)
class Rules:
    """Checks on a tar's names and entry types; `kind` names the tar in refusals, `devices` the (major, minor)
    of the character devices it may hold."""

    kind: str
    devices: frozenset[tuple[int, int]] = frozenset()

    def refuse(self, entry: str, why: str) -> InvalidArgument:
        return InvalidArgument(f"refusing {self.kind} entry {entry!r}: {why}")

    def split(self, name: str, entry: str, what: str = "path") -> tuple[str, ...]:
        """Normalise a member path into components; './a' and 'a/' are plain 'a'."""
        if "\0" in name:
            raise self.refuse(entry, f"{what} contains a NUL byte")
        if name.startswith("/"):
            raise self.refuse(entry, f"{what} is absolute")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if ".." in parts:
            raise self.refuse(entry, f"{what} escapes the root")
        return parts

    def check(self, member: tarfile.TarInfo) -> tuple[str, ...]:
        """Refuse entry types that are never written; returns a hardlink's target components."""
        entry = member.name
        if member.ischr() and (member.devmajor, member.devminor) in self.devices:
            return ()
        if member.ischr() or member.isblk():
            raise self.refuse(entry, f"device nodes are not allowed ({'c' if member.ischr() else 'b'} "
                                     f"{member.devmajor}:{member.devminor})")
        if "\0" in member.linkname:
            raise self.refuse(entry, "link target contains a NUL byte")
        if member.islnk():
            target = self.split(member.linkname, entry, f"hardlink target {member.linkname!r}")
            if not target:
                raise self.refuse(entry, "hardlink target is the root")
            return target
        if not (member.isreg() or member.isdir() or member.issym() or member.isfifo()):
            raise self.refuse(entry, f"unsupported entry type {member.type!r}")
        return ()


def lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove(dir_fd: int, name: str) -> os.stat_result | None:
    """Delete whatever `name` is (a whole tree for a dir); returns what was there."""
    st = lstat(dir_fd, name)
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        remove_tree(name, dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
    return st


def mtime_ns(member: tarfile.TarInfo) -> int:
    return int(member.mtime * 1_000_000_000)


def _owner(member: tarfile.TarInfo, owner: Owner) -> tuple[int, int]:
    return owner if owner is not None else (member.uid, member.gid)


def image_xattr(name: str) -> bool:
    """Only what images legitimately carry; never trusted.* (overlayfs reads trusted.overlay.* / user.overlay.*
    as instructions)."""
    return name == "security.capability" or (name.startswith("user.") and not name.startswith("user.overlay."))


def set_xattrs(fd: int, member: tarfile.TarInfo) -> None:
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PREFIX):
            continue
        name = key[len(_XATTR_PREFIX) :]
        if not image_xattr(name):
            continue
        try:
            os.setxattr(fd, name, value.encode("utf-8", "surrogateescape"))
        except OSError:
            pass  # best effort: the filesystem may not support it


def finish_fd(fd: int, member: tarfile.TarInfo, times: bool = True, owner: Owner = None) -> None:
    os.fchown(fd, *_owner(member, owner))
    os.fchmod(fd, member.mode & 0o7777)  # after chown, which clears setuid/setgid
    set_xattrs(fd, member)  # after chown, which clears security.capability
    if times:
        ns = mtime_ns(member)
        os.utime(fd, ns=(ns, ns))


def _finish_name(dir_fd: int, name: str, member: tarfile.TarInfo, owner: Owner, chmod: bool) -> None:
    os.chown(name, *_owner(member, owner), dir_fd=dir_fd, follow_symlinks=False)
    if chmod:
        os.chmod(name, member.mode & 0o7777, dir_fd=dir_fd, follow_symlinks=False)
    ns = mtime_ns(member)
    os.utime(name, ns=(ns, ns), dir_fd=dir_fd, follow_symlinks=False)


def open_new_dir(parent_fd: int, name: str) -> tuple[int, bool]:
    """An fd of directory `name`, replacing a non-directory there; (fd, whether something was replaced)."""
    st = lstat(parent_fd, name)
    replaced = False
    if st is None or not stat.S_ISDIR(st.st_mode):
        replaced = remove(parent_fd, name) is not None  # never a dir here: nothing cached goes stale
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    return os.open(name, DIR_FLAGS, dir_fd=parent_fd), replaced


def write_file(dir_fd: int, name: str, src: IO[bytes], member: tarfile.TarInfo, buf: bytearray,
               owner: Owner = None) -> os.stat_result | None:
    """Create regular file `name` from `src`; returns what it replaced (a dir is replaced whole)."""
    # O_EXCL first saves a stat per new file.
    replaced = None
    try:
        fd = os.open(name, NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        replaced = remove(dir_fd, name)
        fd = os.open(name, NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(buf)
        while n := src.readinto(buf):  # type: ignore[attr-defined]
            chunk = view[:n]
            while chunk:
                chunk = chunk[os.write(fd, chunk) :]
        finish_fd(fd, member, owner=owner)
    finally:
        os.close(fd)
    return replaced


def make_symlink(dir_fd: int, name: str, member: tarfile.TarInfo, owner: Owner = None) -> os.stat_result | None:
    replaced = remove(dir_fd, name)
    os.symlink(member.linkname, name, dir_fd=dir_fd)
    _finish_name(dir_fd, name, member, owner, chmod=False)
    return replaced


def make_fifo(dir_fd: int, name: str, member: tarfile.TarInfo, owner: Owner = None) -> os.stat_result | None:
    replaced = remove(dir_fd, name)
    os.mkfifo(name, 0o600, dir_fd=dir_fd)
    _finish_name(dir_fd, name, member, owner, chmod=True)
    return replaced


def make_device(dir_fd: int, name: str, member: tarfile.TarInfo) -> os.stat_result | None:
    """A character device `Rules.check` let through."""
    replaced = remove(dir_fd, name)
    os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=dir_fd)
    _finish_name(dir_fd, name, member, None, chmod=True)
    return replaced
