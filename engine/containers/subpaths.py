"""Volume subpaths: `--mount type=volume,src=V,dst=D,volume-subpath=P` mounts only P of the volume.

P is checked at create as dockerd checks it (engine/containers/mounts.py), but whether it
exists, and what it is, is the volume's business until the container starts: the volume may be filled by
another container meanwhile. So the spec, written at create, names a node of the container's own, and each
start resolves P beneath the volume's root without leaving it (openat2 with RESOLVE_BENEATH: a `..` or a
link that leads out is refused, as dockerd's safepath refuses it), then bind-mounts what it found on that
node through the open descriptor, so that nothing swapped into the volume meanwhile can redirect the mount
out of it. The pins go when the container's run ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import posixpath
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from engine.errors import Internal, InvalidArgument, NotFound

_SYS_OPENAT2 = 437  # the same number on every architecture Linux added it to after 5.6
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_MS_BIND = 0x1000
_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class Subpaths:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _node(self, cid: str, index: int) -> Path:
        return self._root / cid / str(index)

    def spec_source(self, cid: str, index: int) -> str:
        """The bind source the spec names for the container's `index`th volume; a directory until the first
        start finds what the subpath is (the runtime checks bind sources at create)."""
        node = self._node(cid, index)
        node.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not node.exists():
            node.mkdir(mode=0o755)
        return str(node)

    async def pin(self, cid: str, index: int, volume_root: str, subpath: str) -> None:
        await asyncio.to_thread(self._pin, self._node(cid, index), volume_root, subpath)

    def _pin(self, node: Path, volume_root: str, subpath: str) -> None:
        self.unmount(node)
        base = os.open(volume_root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            found = _open_beneath(base, volume_root, subpath)
        finally:
            os.close(base)
        try:
            _make_like(node, stat.S_ISDIR(os.fstat(found).st_mode))
            if _libc.mount(f"/proc/self/fd/{found}".encode(), str(node).encode(), None, _MS_BIND, None) != 0:
                err = ctypes.get_errno()
                raise Internal(f"cannot mount {posixpath.join(volume_root, subpath)}: {os.strerror(err)}")
        finally:
            os.close(found)

    async def release(self, cid: str) -> None:
        """After a run: every pin of `cid` goes."""
        await asyncio.to_thread(self._each_node, cid, self.unmount)

    async def forget(self, cid: str) -> None:
        """The pins and their nodes. A node is deleted only once nothing is mounted on it: through a pin still in
        place a recursive delete would empty the volume's part. (A stopped container's node may hold what
        `docker cp` put there.)"""
        def unmount_and_remove(node: Path) -> None:
            self.unmount(node)
            if node.is_dir():
                shutil.rmtree(node)
            else:
                node.unlink(missing_ok=True)
        await asyncio.to_thread(self._each_node, cid, unmount_and_remove)
        with contextlib.suppress(FileNotFoundError):
            (self._root / cid).rmdir()

    def _each_node(self, cid: str, act: Callable[[Path], None]) -> None:
        with contextlib.suppress(FileNotFoundError):
            for node in (self._root / cid).iterdir():
                act(node)

    @staticmethod
    def unmount(node: Path) -> None:
        """Whatever is mounted on `node` (os.path.ismount cannot tell a bind from the same filesystem)."""
        while _libc.umount2(str(node).encode(), _MNT_DETACH) == 0:
            pass
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise Internal(f"cannot unmount {node}: {os.strerror(err)}")


def _open_beneath(base: int, volume_root: str, subpath: str) -> int:
    how = _OpenHow(os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(_SYS_OPENAT2, base, subpath.encode(), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd >= 0:
        return int(fd)
    err = ctypes.get_errno()
    if err == errno.EXDEV:
        raise InvalidArgument(f"path concatenation escapes the base directory, base: {volume_root}, "
                              f"subpath: {subpath}")
    raise NotFound(f"cannot access path {posixpath.join(volume_root, subpath)}: {os.strerror(err).lower()}")


def _make_like(node: Path, directory: bool) -> None:
    """The staging node as a directory or a file, to take a bind of the same kind (made again after a reboot
    has emptied the exec root)."""
    node.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if node.is_dir() == directory and node.exists():
        return
    if node.is_dir():
        node.rmdir()
    else:
        node.unlink(missing_ok=True)
    if directory:
        node.mkdir(mode=0o755)
    else:
        node.touch(mode=0o644)
