"""Getting hold of a container's merged rootfs, running or not.

A container with a task already has its rootfs mounted in the task's bundle: that
mount is used. Otherwise the snapshot's mounts are mounted on a temp dir under
`<state>/rootfs/` for as long as someone uses them: users are counted per
container, so concurrent copies share one mount and the last one out unmounts.
Every user gets an fd of the root opened at mount time; a task deleted meanwhile
only detaches its mount, which the open fd keeps usable.

A container started while a copy holds its temporary mount runs on a second overlay
mount of the same upperdir until that copy (and any joining it) ends; overlayfs
allows it with index=off, but what one mount caches the other may not see at once.

Acquiring and releasing finish even when the request that asked is cancelled (a
client hanging up mid-copy), so no mount outlives its users; whatever a crash
leaves under `<state>/rootfs/` is unmounted at the next start.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from runtime import mount as mountlib
from runtime.metadata.containers import Container, ContainerStore
from runtime.metadata.snapshots import SnapshotService
from runtime.namespaces import require_namespace
from runtime.rootfs.changes import Change, container_changes
from runtime.errors import NotFound
from runtime.rootfs.view import Bind, Location, Parts, Rootfs, binds_of, open_dir
from runtime.tasks.service import TaskService

log = logging.getLogger("runtime.rootfs")

T = TypeVar("T")

_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass
class _Held:
    fd: int
    temp: str | None  # our own mount point, None when the task's mount is used
    users: int = 0

    def close(self) -> None:
        os.close(self.fd)
        if self.temp is not None:
            mountlib.unmount(self.temp, detach=True)
            os.rmdir(self.temp)


class RootfsAccess:
    def __init__(self, root: Path, state: Path, containers: ContainerStore, snapshots: dict[str, SnapshotService],
                 tasks: TaskService) -> None:
        self.spool_dir = root  # on disk, unlike the state dir (a tmpfs): big uploads wait here
        self._mounts = state / "rootfs"
        self._containers = containers
        self._snapshots = snapshots
        self._tasks = tasks
        self._held: dict[tuple[str, str], _Held] = {}
        # Guards the counts and the mount-or-share decision for every container: mounting takes milliseconds.
        self._lock = asyncio.Lock()
        self._settling: set[asyncio.Task[object]] = set()

    async def cleanup(self) -> None:
        """Unmount what a previous run left mounted (it crashed with copies under way)."""

        def sweep() -> None:
            if self._mounts.exists():
                mountlib.unmount_all_under(str(self._mounts), detach=True)
                shutil.rmtree(self._mounts, ignore_errors=True)
            self._mounts.mkdir(parents=True, mode=0o700, exist_ok=True)

        await asyncio.to_thread(sweep)

    def _spawn(self, work: Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return task

    async def acquire(self, container_id: str) -> Rootfs:
        """The container's filesystem, mounted and open until release()."""
        ns = require_namespace()
        c = await self._containers.get(container_id)
        key = (ns, c.id)
        task = self._spawn(self._acquire(key, c))

        def undo(t: asyncio.Task[int]) -> None:
            if not t.cancelled() and t.exception() is None:
                self._spawn(self._release(key))

        try:
            fd = await asyncio.shield(task)
        except asyncio.CancelledError:
            # The caller is gone but the mount may still complete: nobody will release it, so undo it then.
            task.add_done_callback(undo)
            raise
        process = c.spec.get("process") or {}
        user = process.get("user") or {}
        binds = binds_of(c.spec)
        try:
            await asyncio.to_thread(_make_mount_points, fd, binds)
        except BaseException:
            await self.release(Rootfs(key=key, fd=fd, readonly=True, owner=(0, 0)))
            raise
        return Rootfs(key=key, fd=fd, readonly=bool((c.spec.get("root") or {}).get("readonly")),
                      owner=(int(user.get("uid", 0)), int(user.get("gid", 0))), binds=binds)

    async def release(self, rootfs: Rootfs) -> None:
        """Finishes even if the caller is cancelled meanwhile (a client hanging up)."""
        await asyncio.shield(self._spawn(self._release(rootfs.key)))

    async def changes(self, container_id: str) -> list[Change]:
        c = await self._containers.get(container_id)
        # Finished even if the client hangs up: the snapshot view it may make must not outlive it.
        return await asyncio.shield(self._spawn(container_changes(c, self._snapshots[c.snapshotter])))

    @asynccontextmanager
    async def open(self, container_id: str) -> AsyncIterator[Rootfs]:
        rootfs = await self.acquire(container_id)
        try:
            yield rootfs
        finally:
            await self.release(rootfs)

    async def _acquire(self, key: tuple[str, str], c: Container) -> int:
        async with self._lock:
            held = self._held.get(key)
            if held is None:
                held = await self._mount(key, c)
                self._held[key] = held
            held.users += 1
            return held.fd

    async def _release(self, key: tuple[str, str]) -> None:
        async with self._lock:
            held = self._held[key]
            held.users -= 1
            if held.users:
                return
            del self._held[key]
        try:
            await asyncio.to_thread(held.close)
        except Exception:
            log.exception("releasing the rootfs of container %s failed", key[1])

    async def _mount(self, key: tuple[str, str], c: Container) -> _Held:
        ns, cid = key
        if self._tasks.has(cid):
            bundle_rootfs = str(self._tasks.task_dir(ns, cid) / "rootfs")

            def open_task_rootfs() -> int | None:
                return os.open(bundle_rootfs, _ROOT_FLAGS) if mountlib.is_mountpoint(bundle_rootfs) else None

            fd = await asyncio.to_thread(open_task_rootfs)
            if fd is not None:
                return _Held(fd, None)
        mounts = await self._snapshots[c.snapshotter].mounts(c.snapshot_key)

        def mount_temp() -> _Held:
            self._mounts.mkdir(parents=True, mode=0o700, exist_ok=True)
            target = tempfile.mkdtemp(prefix=f"{ns}-{cid[:12]}-", dir=self._mounts)
            try:
                mountlib.mount_all(mounts, target)
                try:
                    return _Held(os.open(target, _ROOT_FLAGS), target)
                except BaseException:
                    mountlib.unmount(target, detach=True)
                    raise
            except BaseException:
                os.rmdir(target)
                raise

        return await asyncio.to_thread(mount_temp)


def _make_mount_points(fd: int, binds: dict[Parts, Bind]) -> None:
    """The directories the container's mounts go on, made in its own tree as runc makes them at a start (and
    dockerd before a copy): a never-started container's volume is then reachable where the image has no such
    directory. Resolved like every other path, so the container's symlinks cannot send them elsewhere."""
    def mkdir(missing: Location) -> None:
        try:
            os.mkdir(missing.name, 0o755, dir_fd=missing.dir_fd)
        except FileExistsError:
            pass
        except OSError as e:  # a read-only tree, no space: the copy finds what is there
            raise NotFound(f"{missing.path}: {e.strerror}") from None

    plain = Rootfs(key=("", ""), fd=fd, readonly=False, owner=(0, 0))
    for dest, bind in binds.items():
        parts = list(dest) if os.path.isdir(bind.source) else list(dest[:-1])
        try:
            open_dir(plain, parts, mkdir=mkdir).close()
        except NotFound:
            pass  # a file in the way, or no room: the copy finds what is there, as the start would
