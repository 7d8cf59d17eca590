"""Named and anonymous volumes of the local driver: a directory per volume under --data-root.

Laid out as dockerd lays them out (<data-root>/volumes/<name>/_data), so a volume's data is a plain
directory the runtime bind-mounts. Driver options (`type`, `device`, `o`) are mount(8) arguments
applied on the volume's directory while containers use it, as Docker's local driver does: mounted for
the first running user (or a copy-up at create), taken down after the last one, and before the volume's
directory is removed, which is never done through a mount (a bind's device is the user's own directory).
"""
from __future__ import annotations

import builtins
import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine.errors import Conflict, Internal, InvalidArgument, NotFound
from engine.volumes.model import ANONYMOUS_LABEL, Volume
from engine.volumes.store import VolumeStore

log = logging.getLogger("engine.volumes")

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_LOCAL_OPTIONS = {"type", "device", "o"}
_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def check_name(name: str) -> None:
    # fullmatch: Go's `$` is the end of the name, where Python's also takes a newline before it.
    if not _NAME.fullmatch(name):
        raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                              "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                              "directory, use absolute path")


def _check_local_options(name: str, options: dict[str, str]) -> None:
    """The local driver's checks, in dockerd's words: known keys only, and a mount needs its type and device."""
    unknown = sorted(set(options) - _LOCAL_OPTIONS)
    if unknown:
        raise InvalidArgument(f'create {name}: invalid option: "{unknown[0]}"')
    if options:
        for required in ("type", "device"):
            if not options.get(required):
                raise InvalidArgument(f'create {name}: missing required option: "{required}"')


def _make_dirs(base: Path) -> None:
    """A volume's directory, 0701 as dockerd's (others may reach `_data` but not list what is beside it), and its
    `_data`, 0755."""
    base.mkdir(mode=0o701, exist_ok=True)
    os.chmod(base, 0o701)  # whatever the umask took away
    (base / "_data").mkdir(mode=0o755, exist_ok=True)


class VolumeService:
    def __init__(self, data_root: Path, users: Callable[[str], list[str]],
                 running: Callable[[str], list[str]]) -> None:
        self.root = data_root / "volumes"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o701)
        self.store = VolumeStore(self.root / "metadata.db")
        # The ids of containers whose mounts name a volume: the container records answer.
        self.users = users
        # Of those, the ones running: the last to stop takes down a mount of the driver options.
        self.running = running
        self._lock = asyncio.Lock()

    def mountpoint(self, name: str) -> str:
        return str(self.root / name / "_data")

    def get(self, name: str) -> Volume:
        v = self.store.find(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def list(self) -> list[Volume]:
        return self.store.all()

    async def create(self, name: str | None = None, *, driver: str = "local", options: dict[str, str] | None = None,
                     labels: dict[str, str] | None = None, anonymous: bool = False) -> Volume:
        """The volume `name` (made now if new; an existing one is returned as it is, as Docker does)."""
        name = name or secrets.token_hex(32)
        if driver not in ("local", ""):
            raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        check_name(name)
        async with self._lock:
            existing = self.store.find(name)
            if existing is not None:
                return existing  # whatever options this create names: dockerd's
            _check_local_options(name, options or {})
            # They become mount(8) arguments at first use, where a NUL byte cannot go.
            for key, value in (options or {}).items():
                if "\x00" in value:
                    raise InvalidArgument(f"invalid option {key!r}: it contains a NUL byte")
            labels = dict(labels) if labels is not None else None
            if anonymous:
                labels = {**(labels or {}), ANONYMOUS_LABEL: ""}
            v = Volume(name=name, created=time.time(), labels=labels,
                       options=dict(options) if options is not None else None)
            try:
                await asyncio.to_thread(_make_dirs, self.root / name)
            except OSError as e:
                # The name's length is the filesystem's to judge (NAME_MAX); other failures are the host's.
                if e.errno != errno.ENAMETOOLONG:
                    raise
                raise InvalidArgument(f"create {name}: error while creating volume root path "
                                      f"'{self.root / name}': file name too long") from None
            await self.store.save(v)
        log.info("volume created name=%s", name)
        return v

    async def prepare(self, name: str) -> str:
        """A container is about to mount `name`: its directory, mounted per the driver options."""
        v = self.get(name)
        path = self.mountpoint(name)
        if (opts := v.options) and not _mounts_on(path):
            args = ["mount", "-t", opts.get("type", "none"), *(["-o", opts["o"]] if "o" in opts else []),
                    opts.get("device", opts.get("type", "none")), path]
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE)
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise Internal(f"error while mounting volume '{path}': {err.decode(errors='replace').strip()}")
        return path

    async def release(self, name: str, leaving: str = "") -> None:
        """Container `leaving` is done with `name` (or a create's copy-up is): when no other running container
        uses it, its driver options' mount goes, as with dockerd's last unmount."""
        v = self.store.find(name)
        if v is not None and v.options and not [cid for cid in self.running(name) if cid != leaving]:
            await asyncio.to_thread(self._unmount, name)

    def _unmount(self, name: str) -> None:
        # Mounts can stack (an engine restart forgets what it mounted): every one goes.
        path = self.mountpoint(name)
        for _ in range(_mounts_on(path)):
            if _libc.umount2(path.encode(), _MNT_DETACH) != 0:
                raise Internal(f"cannot unmount volume {name}: {os.strerror(ctypes.get_errno())}")
        if _mounts_on(path):
            raise Internal(f"cannot unmount volume {name}: it is still mounted")

    async def remove(self, name: str, *, force: bool = False) -> Volume | None:
        v = self.store.find(name)
        if v is None:
            if force:
                return None
            raise NotFound(f"get {name}: no such volume")
        async with self._lock:
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            await asyncio.to_thread(self._destroy, name)
            await self.store.delete(v)
        log.info("volume removed name=%s", name)
        return v

    def _destroy(self, name: str) -> None:
        self._unmount(name)
        shutil.rmtree(self.root / name, ignore_errors=True)

    async def prune(self, selected: Callable[[Volume], bool], *,
                    anonymous_only: bool) -> tuple[builtins.list[str], int]:
        removed, reclaimed = [], 0
        for v in self.list():
            # As dockerd: a volume with mount options may be a share of data kept elsewhere; it is never pruned.
            if self.users(v.name) or not selected(v) or (anonymous_only and not v.anonymous) or v.options:
                continue
            size = await self.size(v.name)
            with contextlib.suppress(Conflict, NotFound):
                await self.remove(v.name)
                removed.append(v.name)
                reclaimed += size
        return removed, reclaimed

    async def size(self, name: str) -> int:
        return await asyncio.to_thread(_du, Path(self.mountpoint(name)))

    def inspect(self, v: Volume) -> dict[str, Any]:
        # Labels and Options are Go maps in dockerd, which marshals them with their keys sorted.
        labels = None if v.labels is None else dict(sorted(v.labels.items()))
        return {"CreatedAt": _rfc3339(v.created), "Driver": v.driver, "Labels": labels,
                "Mountpoint": self.mountpoint(v.name), "Name": v.name,
                "Options": None if v.options is None else dict(sorted(v.options.items())), "Scope": "local"}

    async def usage(self, volumes: Iterable[Volume]) -> builtins.list[dict[str, Any]]:
        """The volumes of `docker system df`, with UsageData."""
        out = []
        for v in volumes:
            out.append({**self.inspect(v), "UsageData": {"Size": await self.size(v.name),
                                                          "RefCount": len(self.users(v.name))}})
        return out


def _mounts_on(path: str) -> int:
    """How many mounts sit on `path`: os.path.ismount misses a bind from the same filesystem."""
    encoded = path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return sum(1 for line in f if line.split(" ", 5)[4] == encoded)


def _du(path: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                # Hard links share their blocks: count each inode once.
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total
