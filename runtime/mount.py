"""The one place in the project that mounts and unmounts.

Mounts are described the way containerd describes them (type, source, options) so a
snapshotter can hand them to whoever needs a rootfs without knowing how they are
applied. Everything here calls mount(2)/umount2(2) through ctypes: forking mount(8)
per layer would dominate container start and unpack times.

The functions are blocking; async callers use the `*_async` wrappers (or run them in
a thread themselves).
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, Field

from runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    RuntimeError_,
)

# <linux/mount.h>
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8
CLONE_FS = 0x200

# option -> (clear instead of set, flag)
_FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID),
    "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV),
    "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC),
    "exec": (True, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS),
    "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK),
    "nomand": (True, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "atime": (True, MS_NOATIME),
    "nodiratime": (False, MS_NODIRATIME),
    "diratime": (True, MS_NODIRATIME),
    "relatime": (False, MS_RELATIME),
    "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "bind": (False, MS_BIND),
    "rbind": (False, MS_BIND | MS_REC),
}

_PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# Flags a bind remount must carry over from the existing mount: the kernel refuses
# (EPERM) to drop "locked" flags, and ST_* values equal the MS_* ones for these.
_STICKY_STATVFS_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME

# Overlay options naming directories; only these may be rewritten relative to a cwd.
_OVERLAY_PATH_KEYS = ("lowerdir", "upperdir", "workdir")

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_EBUSY_RETRIES = 50
_EBUSY_DELAY = 0.02

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int


class Mount(BaseModel):
    """One mount(2) call: `type` is the fs type ("bind" for bind mounts), `options`
    are fstab-style (flags like ro/rbind plus fs data like lowerdir=...)."""

    type: str
    source: str
    options: list[str] = Field(default_factory=list)


class ParsedOptions(BaseModel):
    flags: int
    propagation: int
    data: str


def parse_options(options: list[str]) -> ParsedOptions:
    """Split fstab-style options into mount flags, propagation flags and fs data."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            clear, flag = _FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in _PROPAGATION:
            propagation |= _PROPAGATION[opt]
        else:
            data.append(opt)
    return ParsedOptions(flags=flags, propagation=propagation, data=",".join(data))


def is_bind(m: Mount) -> bool:
    return m.type == "bind" or bool({"bind", "rbind"} & set(m.options))


def overlay_dirs(m: Mount) -> tuple[str, list[str]] | None:
    """(upperdir, lowerdirs topmost first) of an overlay mount; None if it has no upperdir (read-only)."""
    upper: str | None = None
    lowers: list[str] = []
    for opt in m.options:
        key, _, value = opt.partition("=")
        if key == "upperdir":
            upper = value
        elif key == "lowerdir":
            lowers = [p for p in value.split(":") if p]
    return (upper, lowers) if m.type == "overlay" and upper else None


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _error(err: int, what: str) -> RuntimeError_:
    msg = f"{what}: {os.strerror(err)}"
    if err in (errno.EPERM, errno.EACCES):
        return PermissionDenied(msg)
    if err in (errno.ENOENT, errno.ENOTDIR, errno.EINVAL, errno.ENODEV, errno.ELOOP):
        return InvalidArgument(msg)
    return FailedPrecondition(msg)


def _sys_mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    if _libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)) != 0:
        err = ctypes.get_errno()
        raise _error(err, f"mount {fstype or ''} {source or ''} on {target} failed ({data or ''})")


def _relative_overlay_data(data: str) -> tuple[str, str]:
    """Rewrite overlay dir options relative to their common parent.

    Returns (cwd, data). Snapshot dirs share a long prefix (<root>/snapshots/), so
    this typically shrinks each lowerdir to "<id>/fs".
    """
    opts = data.split(",")
    paths: list[str] = []
    for opt in opts:
        key, _, value = opt.partition("=")
        if key in _OVERLAY_PATH_KEYS:
            paths.extend(value.split(":"))
    if not paths or not all(os.path.isabs(p) for p in paths):
        raise InvalidArgument("overlay options too long and not all directories are absolute")
    common = os.path.commonpath([os.path.dirname(os.path.normpath(p)) for p in paths])
    out: list[str] = []
    for opt in opts:
        key, sep, value = opt.partition("=")
        if key in _OVERLAY_PATH_KEYS:
            value = ":".join(os.path.relpath(p, common) for p in value.split(":"))
        out.append(key + sep + value)
    return common, ",".join(out)


def _mount_from_dir(cwd: str, source: str, target: str, fstype: str, flags: int, data: str) -> None:
    """mount(2) with relative paths resolved against `cwd`.

    The cwd is per process, so the chdir happens in a throwaway thread that first
    unshares its fs struct (CLONE_FS): no other thread ever sees the changed cwd.
    """
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            if _libc.unshare(CLONE_FS) != 0:
                raise _error(ctypes.get_errno(), "unshare(CLONE_FS) for overlay mount")
            os.chdir(cwd)
            _sys_mount(source, target, fstype, flags, data)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=run, name="mount-relative")
    worker.start()
    worker.join()
    if outcome:
        raise outcome[0]


def _mount_one(m: Mount, target: str) -> None:
    parsed = parse_options(m.options)
    flags = parsed.flags | (MS_BIND if m.type == "bind" else 0)
    fstype = None if flags & MS_BIND else m.type
    data = parsed.data
    if len(data) + 1 > _PAGE_SIZE:
        if m.type != "overlay":
            raise InvalidArgument(f"mount options for {target} exceed {_PAGE_SIZE} bytes")
        cwd, data = _relative_overlay_data(data)
        if len(data) + 1 > _PAGE_SIZE:
            raise InvalidArgument(
                f"overlay options for {target} exceed {_PAGE_SIZE} bytes even with relative paths"
            )
        _mount_from_dir(cwd, m.source, target, m.type, flags, data)
    else:
        _sys_mount(m.source, target, fstype, flags, data or None)
    try:
        # A new bind mount ignores ro/nosuid/...: they only take effect through a remount.
        if flags & MS_BIND and not flags & MS_REMOUNT and flags & ~(MS_BIND | MS_REC):
            sticky = os.statvfs(target).f_flag & _STICKY_STATVFS_FLAGS
            _sys_mount(None, target, None, (flags & ~MS_REC) | MS_REMOUNT | sticky, None)
        if parsed.propagation:
            _sys_mount(None, target, None, parsed.propagation, None)
    except BaseException:
        _umount(target, MNT_DETACH)
        raise


def _umount(target: str, flags: int) -> int:
    """umount2 retrying EBUSY (a just-exited process may still pin the mount); returns errno or 0."""
    for _ in range(_EBUSY_RETRIES):
        if _libc.umount2(os.fsencode(target), flags | UMOUNT_NOFOLLOW) == 0:
            return 0
        err = ctypes.get_errno()
        if err != errno.EBUSY:
            return err
        time.sleep(_EBUSY_DELAY)
    return errno.EBUSY


def mount_all(mounts: list[Mount], target: str) -> None:
    """Mount each of `mounts` on `target`, in order (later ones stack on earlier ones).

    On failure the mounts already made are undone before the error propagates.
    """
    target = os.path.abspath(target)
    done = 0
    try:
        for m in mounts:
            _mount_one(m, target)
            done += 1
    except BaseException:
        for _ in range(done):
            _umount(target, MNT_DETACH)
        raise


def unmount(target: str, detach: bool = False) -> None:
    """Unmount everything stacked on `target`; a no-op if nothing is mounted there.

    `detach` (MNT_DETACH) lets a busy mount go away lazily instead of failing.
    """
    target = os.path.abspath(target)
    while True:
        err = _umount(target, MNT_DETACH if detach else 0)
        if err == 0:
            continue
        if err in (errno.EINVAL, errno.ENOENT):
            return  # not (or no longer) a mount point
        raise _error(err, f"unmount {target} failed")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out = bytearray()
    raw = os.fsencode(field)
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 4 <= len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def mount_points() -> list[str]:
    """Every mount point of this mount namespace, in mount order."""
    with open("/proc/self/mountinfo", "rb") as f:
        lines = f.read().decode("utf-8", "surrogateescape").splitlines()
    return [_unescape(line.split(" ", 5)[4]) for line in lines if line]


def is_mountpoint(path: str) -> bool:
    """True if something is mounted exactly at `path` (bind mounts included, which
    os.path.ismount misses when source and target share a filesystem)."""
    path = os.path.realpath(path)
    return path in mount_points()


def unmount_all_under(path: str, detach: bool = False) -> None:
    """Unmount `path` and every mount below it, deepest first (cleanup after crashes).

    Repeats until nothing is left, because a mount hidden under a later mount on a
    parent only becomes reachable once that parent mount is gone.
    """
    path = os.path.realpath(path)
    prefix = path.rstrip("/") + "/"
    previous: set[str] | None = None
    while True:
        targets = {p for p in mount_points() if p == path or p.startswith(prefix)}
        if not targets:
            return
        if targets == previous:
            raise FailedPrecondition(f"cannot unmount {sorted(targets)} under {path}")
        for target in sorted(targets, key=lambda p: p.count("/"), reverse=True):
            unmount(target, detach=detach)
        previous = targets


@contextmanager
def mounted(mounts: list[Mount], parent: str | None = None) -> Iterator[str]:
    """Mount `mounts` on a fresh temp dir for the duration of the block."""
    target = tempfile.mkdtemp(prefix="pyengine-mount-", dir=parent)
    try:
        mount_all(mounts, target)
        try:
            yield target
        finally:
            unmount(target)
    finally:
        os.rmdir(target)


async def mount_all_async(mounts: list[Mount], target: str) -> None:
    await asyncio.to_thread(mount_all, mounts, target)


async def unmount_async(target: str, detach: bool = False) -> None:
    await asyncio.to_thread(unmount, target, detach)


async def unmount_all_under_async(path: str, detach: bool = False) -> None:
    await asyncio.to_thread(unmount_all_under, path, detach)
