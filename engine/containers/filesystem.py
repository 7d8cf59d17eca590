"""A container's files: path stat, tar out and in (docker cp), changes (docker diff), export, layer sizes.

The runtime does the work on the container's rootfs; this service adds Docker's rules:
a missing path is Docker's "Could not find the file" 404, copyUIDGID only applies when
the container names a user, and each operation that touches the files is an event.
The writable layer's size is looked up here and nowhere else (inspect, list, prune and
system df all ask), and so is where the files live on the host (inspect's GraphDriver and
its /etc file paths), as the runtime's records and snapshotter tell it.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from engine.containers.store import Container, ContainerStore, Storage
from engine.errors import NotFound
from engine.events import EventBus
from runtime import client as rt
from runtime.client.records import Container as RuntimeContainer
from runtime.client.records import Mount


# Facts kept of layers and containers: far more than a host has, a bound all the same.
_KEPT = 4096
# Containers whose records a `ps --size` looks up at once (only the first time: what it learns is kept).
_LOOKED_UP_AT_ONCE = 4

# The files Docker generates for a container and bind-mounts over the image's.
ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


async def storage_of(runtime: rt.RuntimeAPI, record: RuntimeContainer) -> Storage:
    """From the runtime's record of a container: its snapshotter's dirs and the /etc files its spec mounts."""
    return storage_from(record, await runtime.snapshot_mounts(record.snapshotter, record.snapshot_key))


def storage_from(record: RuntimeContainer, rootfs: list[Mount]) -> Storage:
    """The same from the record and its snapshot's mounts, as creating the container answered them."""
    etc = {m["destination"]: m["source"] for m in record.spec.get("mounts") or []
           if m.get("destination") in ETC_FILES and m.get("type") == "bind"}
    return Storage(driver=record.snapshotter, graph_data=_overlay_dirs(rootfs), etc=etc)


class VolumeMounts(Protocol):
    async def prepare(self, name: str) -> str: ...

    async def release(self, name: str, leaving: str = "") -> None: ...


class ContainerFiles:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore, events: EventBus, volumes: VolumeMounts) -> None:
        self._rt = runtime
        self._store = store
        self._events = events
        self._volumes = volumes
        self._layers: dict[tuple[str, str], tuple[int, str]] = {}  # (snapshotter, key) -> (bytes, parent key)
        self._rootfs_of: dict[str, tuple[str, str, str]] = {}  # container id -> (snapshotter, key, parent key)

    async def stat(self, ref: str, path: str) -> dict[str, Any]:
        """Docker's path stat ({"name", "size", "mode", "mtime", "linkTarget"})."""
        c = self._store.get(ref)
        try:
            async with self._volumes_of(c):
                return await self._rt.stat_path(c.id, path)
        except rt.NotFound:
            raise _missing(path, ref) from None

    @asynccontextmanager
    async def archive(self, ref: str, path: str) -> AsyncIterator[tuple[dict[str, Any], AsyncIterator[bytes]]]:
        """(the path's stat, the bytes of a tar of it), for the duration of the block.

        Only opening can fail with the 404: once the tar flows the runtime's errors come from the chunks.
        """
        c = self._store.get(ref)
        try:
            async with self._volumes_of(c), self._rt.archive(c.id, path) as (st, chunks):
                self._events.container(c, "archive-path")
                yield st, chunks
        except rt.NotFound:
            raise _missing(path, ref) from None

    async def put_archive(self, ref: str, path: str, data: AsyncIterable[bytes], *,
                          no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> None:
        """Unpack the tar streamed from `data` into directory `path` of the container."""
        c = self._store.get(ref)
        try:
            # copyUIDGID gives the files to the container's user; without a user, Docker keeps the tar's ids.
            async with self._volumes_of(c):
                await self._rt.put_archive(c.id, path, data, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                                           copy_uid_gid=copy_uid_gid and bool(c.config.get("User")))
        except rt.NotFound:
            raise _missing(path, ref) from None
        self._events.container(c, "extract-to-dir")

    @asynccontextmanager
    async def _volumes_of(self, c: Container) -> AsyncIterator[None]:
        """A volume with driver options (a bind of another directory, a tmpfs, NFS) is mounted only while a
        container runs: docker cp on a stopped one mounts it for the copy, as dockerd does, not to reach the
        empty directory below."""
        names = [v["name"] for v in c.volumes]
        prepared: list[str] = []
        try:
            for name in names:
                await self._volumes.prepare(name)
                prepared.append(name)
            yield
        finally:
            for name in prepared:
                await self._volumes.release(name)

    async def changes(self, ref: str) -> list[dict[str, Any]]:
        """docker diff: [{"Path", "Kind"}], kind 0 modified, 1 added, 2 deleted."""
        c = self._store.get(ref)
        found = await self._rt.container_changes(c.id)
        return [{"Path": ch["path"], "Kind": ch["kind"]} for ch in found]

    @asynccontextmanager
    async def export(self, ref: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """The bytes of a tar of the container's whole rootfs, for the duration of the block."""
        c = self._store.get(ref)
        async with self._rt.export(c.id) as chunks:
            self._events.container(c, "export")
            yield chunks

    async def size(self, c: Container) -> int | None:
        """Bytes in the container's writable layer; None when the runtime has no snapshot for it (any more)."""
        return (await self.sizes_of([c]))[0][0]

    async def sizes_of(self, containers: list[Container]) -> list[tuple[int | None, int | None]]:
        """Each container's SizeRw, the bytes in its writable layer, and SizeRootFs, that layer and every image
        layer under it as dockerd adds them up (None, None where the runtime has no snapshot for it any more).
        The writable layers are measured in one request per snapshotter (docker ps --size)."""
        gate = asyncio.Semaphore(_LOOKED_UP_AT_ONCE)

        async def rootfs(c: Container) -> tuple[str, str, str] | None:
            async with gate:
                with contextlib.suppress(rt.RuntimeError_):
                    return await self._rootfs(c.id)
            return None

        found = await asyncio.gather(*(rootfs(c) for c in containers))
        keys: dict[str, list[str]] = {}
        for r in found:
            if r is not None:
                keys.setdefault(r[0], []).append(r[1])
        rw: dict[tuple[str, str], int] = {}
        for snapshotter, wanted in keys.items():
            with contextlib.suppress(rt.RuntimeError_):
                measured = await self._rt.snapshot_usages(snapshotter, wanted)
                rw.update({(snapshotter, key): usage.content for key, usage in measured.items()})
        out: list[tuple[int | None, int | None]] = []
        for r in found:
            size = rw.get((r[0], r[1])) if r is not None else None
            below = await self._below(r[0], r[2]) if r is not None and size is not None else None
            out.append((size, size + below) if size is not None and below is not None else (None, None))
        return out

    async def _below(self, snapshotter: str, key: str) -> int | None:
        """The bytes of image layer `key` and those under it; None when the runtime cannot tell."""
        total = 0
        with contextlib.suppress(rt.RuntimeError_):
            while key:
                size, key = await self._layer(snapshotter, key)
                total += size
            return total
        return None

    async def _rootfs(self, cid: str) -> tuple[str, str, str]:
        """A container's snapshotter, its writable snapshot and the image layer that is on: none of them changes
        while the container exists, so `ps --size` asks the runtime only for the writable layer's usage."""
        known = self._rootfs_of.get(cid)
        if known is None:
            record = await self._rt.container(cid)
            below = (await self._rt.snapshot(record.snapshotter, record.snapshot_key)).parent or ""
            known = record.snapshotter, record.snapshot_key, below
            _keep(self._rootfs_of, cid, known)
        return known

    async def _layer(self, snapshotter: str, key: str) -> tuple[int, str]:
        """An image layer's bytes and the layer under it, measured once: committed layers never change."""
        known = self._layers.get((snapshotter, key))
        if known is None:
            size = (await self._rt.snapshot_usage(snapshotter, key)).content
            known = size, (await self._rt.snapshot(snapshotter, key)).parent or ""
            _keep(self._layers, (snapshotter, key), known)
        return known

    async def storage(self, c: Container) -> Storage:
        """Known from create; a record older than that asks the runtime, and an unreachable one leaves it unknown."""
        if c.storage is not None:
            return c.storage
        with contextlib.suppress(rt.RuntimeError_):
            return await storage_of(self._rt, await self._rt.container(c.id))
        return Storage()


def _keep(known: dict[Any, Any], key: Any, value: Any) -> None:
    if len(known) >= _KEPT:
        known.clear()
    known[key] = value


def _overlay_dirs(mounts: list[Mount]) -> dict[str, str] | None:
    """overlay2's GraphDriver.Data from an overlay mount's options; other snapshotters have none (as vfs)."""
    if len(mounts) != 1 or mounts[0].type != "overlay":
        return None
    names = {"lowerdir": "LowerDir", "upperdir": "UpperDir", "workdir": "WorkDir"}
    return {names[k]: v for k, _, v in (o.partition("=") for o in mounts[0].options) if k in names} or None


def _missing(path: str, ref: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {ref}")
