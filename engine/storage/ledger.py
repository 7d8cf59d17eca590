"""The disk usage ledger: what the engine's images, containers, volumes and retained logs take, kept current.

`docker system df` and the storage budget read it; neither walks a tree to answer. What changes usage
announces itself: the runtime's events for its image store (records, content, committed snapshots,
whoever changed them) and the engine's own (a container's create, start, die, destroy; a volume's
unmount or destroy). The ledger then re-measures only that part: a container's writable layer or a
volume by walking that one tree, images by listing the runtime's records, content and snapshots. A
committed snapshot never changes, so each layer is measured once (the runtime keeps its usage from
commit). Running containers write without events: `sweep()` measures their layers and the volumes
again on an interval (the budget's, 60 s by default).

Sizes are what `du` reports: blocks allocated. Content blobs are counted as the whole blocks their
bytes fill (`ceil(size / block) × block`) since the runtime reports their length.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.containers.store import Container, ContainerStore
from engine.events import CONTAINER, IMAGE, VOLUME, Event, EventBus
from engine.images.model import LocalImage, chain_ids
from engine.logs.retention import RemovedLogs
from engine.volumes.model import Volume
from runtime import client as rt
from runtime.client.records import ContentInfo, Usage

log = logging.getLogger("engine.storage")

# What a container's writable layer may have changed with (exec_die: an exec wrote into it).
_CONTAINER_CHANGES = frozenset({"create", "start", "die", "stop", "destroy", "commit", "extract-to-dir", "exec_die"})
_VOLUME_CHANGES = frozenset({"create", "unmount", "destroy"})


# The runtime's own topics for what changes the image store, whoever changed it (a pyctr pull, a build step,
# the runtime's GC): the engine's events do not see all of it.
_STORE_TOPICS = ["/images/*", "/content/*", "/snapshot/commit", "/snapshot/remove"]


class LedgerRuntime(Protocol):
    def events(self, topics: list[str] | None = None, namespaces: list[str] | None = None,
               announce: bool = False) -> AsyncIterator[dict[str, Any]]: ...

    async def content(self, namespace: str | None = None) -> list[ContentInfo]: ...

    async def snapshotters(self) -> list[str]: ...

    async def snapshots(self, snapshotter: str, namespace: str | None = None) -> list[dict[str, Any]]: ...

    async def snapshot_usage(self, snapshotter: str, key: str, namespace: str | None = None) -> Usage: ...


class LedgerImages(Protocol):
    async def images(self) -> list[LocalImage]: ...


class LedgerVolumes(Protocol):
    async def size(self, name: str) -> int: ...

    def list(self) -> list[Volume]: ...


@dataclass
class ImageState:
    """The image side, measured together: records, blobs and committed layers."""

    images: list[LocalImage] = field(default_factory=list)
    blobs: dict[str, int] = field(default_factory=dict)   # digest -> bytes on disk
    layers: dict[str, int] = field(default_factory=dict)  # committed snapshot name (chain ID) -> bytes, all snapshotters
    build_cache: list[dict[str, Any]] = field(default_factory=list)  # system df's BuildCache records

    @property
    def total(self) -> int:
        return sum(self.blobs.values()) + sum(self.layers.values())


class DiskLedger:
    def __init__(self, runtime: LedgerRuntime, images: LedgerImages, store: ContainerStore, volumes: LedgerVolumes,
                 events: EventBus, retention: RemovedLogs | None, snapshotter: str, block: int,
                 build_cache: Callable[[], Awaitable[list[dict[str, Any]]]], namespace: str) -> None:
        self._namespace = namespace
        self._build_cache = build_cache
        self._rt = runtime
        self._images = images
        self._store = store
        self._volumes = volumes
        events.observe(self.observe)
        self._retention = retention
        self._snapshotter = snapshotter
        self._block = block
        self._snapshotters: list[str] | None = None
        self._layer_cache: dict[tuple[str, str], int] = {}  # (snapshotter, committed key) -> bytes
        self._image_state: ImageState | None = None
        # Bumped by every change to the image store; a state measured at an older one is measured again,
        # so a change that lands while a measure is under way is not lost.
        self._image_gen = 0
        self._measured_gen = -1
        self._rw: dict[str, int] = {}
        self._vol: dict[str, int] = {}
        self._dirty_rw: set[str] = set()
        self._dirty_vol: set[str] = set()
        self._lock = asyncio.Lock()
        self.changed = asyncio.Event()  # set on every announced change; the budget waits on it

    # what changed ------------------------------------------------------------

    def images_changed(self) -> None:
        self._image_gen += 1
        self.changed.set()

    def container_changed(self, cid: str) -> None:
        self._dirty_rw.add(cid)
        self.changed.set()

    def everything_changed(self) -> None:
        self._image_gen += 1
        self._dirty_rw.update(c.id for c in self._store.all())
        self._dirty_vol.update(self._names())
        self.changed.set()

    def observe(self, ev: Event) -> None:
        """An event observer (called as each event is published, never dropped): mark what it says changed."""
        if ev.type == CONTAINER and ev.action in _CONTAINER_CHANGES:
            self.container_changed(ev.actor_id)
            if ev.action == "commit":
                self.images_changed()
        elif ev.type == IMAGE or ev.type == "builder":
            self.images_changed()
        elif ev.type == VOLUME and ev.action in _VOLUME_CHANGES:
            self._dirty_vol.add(ev.actor_id)
            self.changed.set()

    async def follow_store(self) -> None:
        """Re-list the image store whenever the runtime says it changed, for good; resubscribe when cut off."""
        delay = 0.1
        while True:
            try:
                async for _ in self._rt.events(_STORE_TOPICS, [self._namespace], announce=True):
                    self.images_changed()  # the subscription's start too: what changed while unsubscribed
                    delay = 0.1
            except rt.RuntimeError_ as e:
                log.warning("runtime event stream failed (%s); resubscribing in %.1fs", e.message, delay)
            except Exception:  # must not end the daemon's background work
                log.exception("disk ledger's runtime events failed; resubscribing in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def sweep(self, interval: float) -> None:
        """Running containers write into their layers (and volumes) without telling: measure them again on
        `interval`, in the background, so that answers stay within one interval of the truth."""
        while True:
            self._dirty_rw.update(c.id for c in self._store.all() if c.state.running)
            self._dirty_vol.update(self._names())
            try:
                await self.refresh()
            except Exception:  # a failed measure must not end the sweeps (nor the daemon's background work)
                log.exception("measuring disk usage failed")
            self.changed.set()
            await asyncio.sleep(interval)

    def _names(self) -> list[str]:
        return [v.name for v in self._volumes.list()]

    # measuring ---------------------------------------------------------------

    async def refresh(self) -> None:
        async with self._lock:
            if self._measured_gen != self._image_gen:
                gen = self._image_gen
                self._image_state = await self._measure_images()
                self._measured_gen = gen
            known = {c.id: c for c in self._store.all()}
            for cid in [cid for cid in self._rw if cid not in known]:
                del self._rw[cid]
            dirty = {cid for cid in self._dirty_rw if cid in known} | (set(known) - set(self._rw))
            self._dirty_rw.clear()
            sizes = await asyncio.gather(*(self._measure_rw(_driver(known[cid]), cid) for cid in dirty))
            self._rw.update(zip(dirty, sizes))
            names = set(self._names())
            for name in [n for n in self._vol if n not in names]:
                del self._vol[name]
            vdirty = (self._dirty_vol & names) | (names - set(self._vol))
            self._dirty_vol.clear()
            for name in vdirty:
                with contextlib.suppress(Exception):
                    self._vol[name] = await self._volumes.size(name)

    async def _measure_rw(self, driver: str, cid: str) -> int:
        with contextlib.suppress(rt.RuntimeError_):
            return (await self._rt.snapshot_usage(driver or self._snapshotter, cid)).size
        return 0

    async def _measure_images(self) -> ImageState:
        if self._snapshotters is None:
            self._snapshotters = await self._rt.snapshotters()
        images, content, cache, *listed = await asyncio.gather(
            self._images.images(), self._rt.content(), self._build_cache(),
            *(self._rt.snapshots(name) for name in self._snapshotters))
        blobs = {c.digest: -(-c.size // self._block) * self._block for c in content}
        committed = [(name, s["key"]) for name, snaps in zip(self._snapshotters, listed) for s in snaps
                     if s.get("kind") == "committed"]
        for name, key in committed:
            if (name, key) not in self._layer_cache:
                with contextlib.suppress(rt.NotFound):
                    self._layer_cache[name, key] = (await self._rt.snapshot_usage(name, key)).size
        for gone in set(self._layer_cache) - set(committed):
            del self._layer_cache[gone]
        layers: dict[str, int] = {}
        for (_, key), size in self._layer_cache.items():
            layers[key] = layers.get(key, 0) + size
        return ImageState(images, blobs, layers, cache)

    # answers -----------------------------------------------------------------

    async def image_state(self) -> ImageState:
        await self.refresh()
        assert self._image_state is not None
        return self._image_state

    async def rw(self) -> dict[str, int]:
        await self.refresh()
        return dict(self._rw)

    async def volume_sizes(self) -> dict[str, int]:
        await self.refresh()
        return dict(self._vol)

    def retained_logs(self) -> int:
        return self._retention.bytes() if self._retention is not None else 0

    async def total(self) -> int:
        """Everything the budget counts: images and build cache, writable layers, volumes, retained logs."""
        state = await self.image_state()
        return state.total + sum(self._rw.values()) + sum(self._vol.values()) + self.retained_logs()


def _driver(c: Container) -> str:
    return c.storage.driver if c.storage is not None else ""


def block_size(path: str) -> int:
    with contextlib.suppress(OSError):
        return os.statvfs(path).f_bsize or 4096
    return 4096


def image_parts(image: LocalImage) -> tuple[list[str], list[str]]:
    """(its blobs' digests, its layers' chain IDs): what an image holds on disk."""
    blobs = [image.manifest_digest, image.id, *(str(layer.get("digest")) for layer in image.layers)]
    return blobs, chain_ids(image.diff_ids)
