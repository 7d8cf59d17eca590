"""Mounts of a container's spec: Docker's default filesystems plus the user's binds and tmpfs.

Destinations are cleaned and checked here, and the defaults a user mount covers are
dropped, so runc never sees two mounts fighting over one path.
"""
from __future__ import annotations

import os
import posixpath
from typing import Any

from runtime.errors import InvalidArgument
from runtime.tasks.spec_options import SpecOptions

_SHM_SIZE = 64 * 1024 * 1024  # Docker's default


def _mount(dest: str, typ: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": typ, "source": source, "options": options}


def _default_mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    sys_ro = [] if opts.privileged else ["ro"]
    mounts = [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", *sys_ro]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", *sys_ro]),
    ]
    if opts.ipc_mode == "host":
        # Sharing the host's IPC namespace means sharing its POSIX shm and queues too; the host's /dev/shm as it
        # is (dockerd adds no nosuid/noexec there: programs map executable shared memory from it).
        mounts.append(_mount("/dev/shm", "bind", "/dev/shm", ["rbind", "rprivate", "rw"]))
        if os.path.isdir("/dev/mqueue"):
            mounts.append(_mount("/dev/mqueue", "bind", "/dev/mqueue", ["rbind", "nosuid", "noexec", "nodev"]))
    else:
        mounts.append(_mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]))
        if opts.ipc_mode != "none":
            mounts.append(_mount("/dev/shm", "tmpfs", "shm",
                                 ["nosuid", "noexec", "nodev", "mode=1777", f"size={opts.shm_size or _SHM_SIZE}"]))
    return mounts


def _clean_destination(dest: str) -> str:
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid mount path: '{dest}' mount path must be absolute")
    cleaned = posixpath.normpath(dest)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if cleaned == "/":
        raise InvalidArgument("a mount cannot replace the root filesystem")
    return cleaned


def _tmpfs_options(spec: str) -> list[str]:
    # Docker's defaults for --tmpfs, each of which the user may flip back.
    flags = {"noexec": "exec", "nosuid": "suid", "nodev": "dev"}
    given = [o for o in spec.split(",") if o]
    kept = [d for d, opposite in flags.items() if opposite not in given and d not in given]
    return kept + given


def _user_mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    for m in opts.mounts:
        dest = _clean_destination(m.destination)
        options = list(m.options)
        source = m.source
        if m.type == "bind":
            if not source.startswith("/"):
                raise InvalidArgument(f"bind mount source {source!r} must be an absolute path")
            if "bind" not in options and "rbind" not in options:
                options.append("rbind")
        mounts.append(_mount(dest, m.type, source or m.type, options))
    for dest, spec in opts.tmpfs.items():
        mounts.append(_mount(_clean_destination(dest), "tmpfs", "tmpfs", _tmpfs_options(spec)))
    seen: set[str] = set()
    for mount in mounts:
        if mount["destination"] in seen:
            raise InvalidArgument(f"duplicate mount point: {mount['destination']}")
        seen.add(mount["destination"])
    # Parents before children, or a later parent mount would hide an earlier child.
    return sorted(mounts, key=lambda m: m["destination"].count("/"))


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    user = _user_mounts(opts)
    # A user mount replaces any default at or below its destination (a user /dev takes /dev/pts with it).
    defaults = [d for d in _default_mounts(opts) if not any(_under(d["destination"], u["destination"]) for u in user)]
    return defaults + user
