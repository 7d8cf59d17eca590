"""overlayfs' own on-disk format, for writing a layer straight into an upper dir.

A whiteout is a 0/0 char device, an opaque dir carries trusted.overlay.opaque=y,
and the lowerdirs are read (merged the way overlayfs merges them) only to know what
the mounted view would show. A hardlink to a file found only in a lower needs that
file copied up first, as overlayfs itself would before linking it.
"""
from __future__ import annotations

import errno
import os
import stat

from runtime import untrusted_tar as ut
from runtime.untrusted_tar import CHUNK
from runtime.untrusted_tar import lstat as _lstat

OPAQUE_XATTR = "trusted.overlay.opaque"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def lower_find(lower_fds: list[int], name: str) -> tuple[int, os.stat_result] | None:
    """The entry `name` visible through the lower stack of a dir, with the fd of
    the lower dir holding it; None if absent or whited out."""
    for lfd in lower_fds:
        st = _lstat(lfd, name)
        if st is None:
            continue
        return None if is_whiteout(st) else (lfd, st)
    return None


def lower_dirs(lower_fds: list[int], name: str) -> tuple[os.stat_result | None, list[int]]:
    """Merged lookup of `name` in the lower stack: the topmost visible entry and, if
    it is a dir, the fds of the lower dirs that overlayfs would merge under it."""
    first: os.stat_result | None = None
    fds: list[int] = []
    try:
        for lfd in lower_fds:
            st = _lstat(lfd, name)
            if st is None:
                continue
            if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                if first is None and not is_whiteout(st):
                    first = st
                break  # a whiteout or non-dir ends the merge (and hides all below)
            if first is None:
                first = st
            fds.append(os.open(name, ut.DIR_FLAGS, dir_fd=lfd))
            if is_opaque(fds[-1]):
                break
    except BaseException:
        close_all(fds)
        raise
    return first, fds


def _copy_data(src: int, dst: int, buf: bytearray) -> None:
    try:
        while os.copy_file_range(src, dst, CHUNK):
            pass
        return
    except OSError as e:
        # Not supported between these filesystems: carry on from the current offsets.
        if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    while n := os.readv(src, [buf]):
        chunk = memoryview(buf)[:n]
        while chunk:
            chunk = chunk[os.write(dst, chunk) :]


def copy_up(lower_fd: int, upper_fd: int, name: str, st: os.stat_result, buf: bytearray) -> bool:
    """Copy lower entry `name` into the upper dir with its owner, mode, times and kept xattrs.

    False (nothing written) when it is not a regular file, symlink or fifo.
    """
    mode = st.st_mode
    ns = st.st_mtime_ns
    if stat.S_ISREG(mode):
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=lower_fd)
        try:
            dst = os.open(name, ut.NEW_FILE_FLAGS, 0o600, dir_fd=upper_fd)
            try:
                _copy_data(src, dst, buf)
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
        return False
    return True
