"""Filling a new, empty volume with what the image has at its mount point, as Docker does at create.

The image's directory is found like a chroot would find it (runtime.rootfs.view), so a symlink in
the image cannot point the copy at the host; the walk below it never follows links. Ownership, modes,
times and extended attributes (file capabilities) are kept, fifos and device nodes copied as the
layers held them (a layer holds only the devices every container has); sockets are not copied.
Blocking: run it in a thread.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat

from runtime.errors import InvalidArgument, NotFound
from runtime.rootfs.view import Rootfs, components, open_dir
from runtime.untrusted_tar import image_xattr


def copy_up(root: str, destination: str, volume: str) -> bool:
    """Copy root/destination into `volume` if the volume is empty; whether anything was copied."""
    with os.scandir(volume) as it:
        if any(True for _ in it):
            return False
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            loc = open_dir(Rootfs(key=("", ""), fd=fd, readonly=True, owner=(0, 0)), components(destination))
        except (NotFound, InvalidArgument):
            return False  # nothing (or no directory) there in the image: the volume starts empty
        try:
            # The directory itself, not /proc's link to it: the volume's root takes its owner and mode.
            _copy_tree(f"/proc/self/fd/{loc.dir_fd}", volume, os.fstat(loc.dir_fd))
        finally:
            loc.close()
    finally:
        os.close(fd)
    return True


def _copy_tree(src: str, dst: str, top: os.stat_result) -> None:
    copied: dict[tuple[int, int], str] = {}  # hard links stay links: each inode copied once
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        target_dir = dst if rel == "." else os.path.join(dst, rel)
        for name in dirnames + filenames:
            s, d = os.path.join(dirpath, name), os.path.join(target_dir, name)
            st = os.lstat(s)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(d, stat.S_IMODE(st.st_mode))
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISREG(st.st_mode) and (first := copied.get((st.st_dev, st.st_ino))) is not None:
                os.link(first, d)
                continue
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(s, d, follow_symlinks=False)
                if st.st_nlink > 1:
                    copied[(st.st_dev, st.st_ino)] = d
            elif stat.S_ISFIFO(st.st_mode):
                os.mkfifo(d, stat.S_IMODE(st.st_mode))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                os.mknod(d, st.st_mode, st.st_rdev)
            else:
                continue
            _keep(d, st)
            _keep_xattrs(s, d)
        # Directories' times last: filling them moved their mtimes.
        if rel != ".":
            _keep(target_dir, os.lstat(dirpath))
    _keep_xattrs(src, dst)
    _keep(dst, top)


def _keep(path: str, st: os.stat_result) -> None:
    os.lchown(path, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    with contextlib.suppress(OSError):
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _keep_xattrs(src: str, dst: str) -> None:
    """The attributes a layer may hold (file capabilities, user.*), set after the owner: a chown drops
    `security.capability`. What the volume's filesystem cannot hold is left behind, as `cp -a` would."""
    with contextlib.suppress(OSError):
        names = [name for name in os.listxattr(src, follow_symlinks=False) if image_xattr(name)]
        for name in names:
            with contextlib.suppress(OSError):
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
