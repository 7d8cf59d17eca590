"""Registrations of every built-in runtime component."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.config import Config
from runtime.content.local import LocalStore
from runtime.events.exchange import Exchange
from runtime.metadata.content import ContentService
from runtime.metadata.db import Database
from runtime.metadata.gc import Collector
from runtime.metadata.images import ImageStore
from runtime.metadata.leases import LeaseStore
from runtime.metadata.namespaces import NamespaceStore
from runtime.metadata.snapshots import SnapshotService
from runtime.wire import DEFAULT_NAMESPACE
from runtime.plugins.registry import InitContext, Registration, Registry, SkipPlugin
from runtime.snapshots.native import NativeSnapshotter
from runtime.snapshots.overlay import OverlaySnapshotter, supported as overlay_supported
from runtime.transfer.pull import Puller
from runtime.transfer.registry import RemoteFactory

EVENT = "io.pyengine.event.v1"
METADATA = "io.pyengine.metadata.v1"
CONTENT = "io.pyengine.content.v1"
SNAPSHOTTER = "io.pyengine.snapshotter.v1"
DIFF = "io.pyengine.differ.v1"
LEASE = "io.pyengine.lease.v1"
GC = "io.pyengine.gc.v1"
TRANSFER = "io.pyengine.transfer.v1"
SERVICE = "io.pyengine.service.v1"


@dataclass
class Metadata:
    db: Database
    # Serialises GC against commits that make new things reachable.
    gc_lock: asyncio.Lock


def register_all(registry: Registry, cfg: Config) -> None:
    root = Path(cfg.root)

    async def events(_: InitContext) -> Exchange:
        return Exchange()

    async def metadata(ctx: InitContext) -> Metadata:
        db = Database(root / "metadata.db")
        await db.open()
        return Metadata(db, asyncio.Lock())

    async def close_metadata(m: Metadata) -> None:
        await m.db.close()

    async def content(ctx: InitContext) -> ContentService:
        store = LocalStore(root / "content")
        await asyncio.to_thread(store.cleanup)
        m: Metadata = ctx.get(METADATA)
        return ContentService(m.db, store, ctx.get(EVENT), m.gc_lock)

    async def overlayfs(_: InitContext) -> OverlaySnapshotter:
        sroot = root / "snapshots" / "overlayfs"
        sroot.mkdir(parents=True, exist_ok=True)
        reason = await asyncio.to_thread(overlay_supported, str(sroot))
        if reason:
            raise SkipPlugin(reason)
        snap = OverlaySnapshotter(str(sroot))
        await snap.cleanup()
        return snap

    async def native(_: InitContext) -> NativeSnapshotter:
        sroot = root / "snapshots" / "native"
        sroot.mkdir(parents=True, exist_ok=True)
        snap = NativeSnapshotter(str(sroot))
        await snap.cleanup()
        return snap

    async def close_snapshotter(s: Any) -> None:
        await s.close()

    async def differ(_: InitContext) -> str:
        # The walking applier is a plain function (runtime.diff.apply); registering
        # it makes its presence, and what the pull requires, visible.
        return "walking"

    async def leases(ctx: InitContext) -> LeaseStore:
        return LeaseStore(ctx.get(METADATA).db)

    async def snapshots(ctx: InitContext) -> dict[str, SnapshotService]:
        m: Metadata = ctx.get(METADATA)
        backends = ctx.get_all(SNAPSHOTTER)
        if not backends:
            raise SkipPlugin("no snapshotter loaded")
        return {name: SnapshotService(name, b, m.db, ctx.get(EVENT), m.gc_lock) for name, b in backends.items()}

    async def gc(ctx: InitContext) -> Collector:
        m: Metadata = ctx.get(METADATA)
        collector = Collector(m.db, ctx.get(CONTENT).store, ctx.get_all(SNAPSHOTTER), m.gc_lock)
        await collector.collect()
        return collector

    async def namespaces(ctx: InitContext) -> NamespaceStore:
        store = NamespaceStore(ctx.get(METADATA).db, ctx.get(EVENT))
        # pyctr's default namespace always answers, even before anything is written to it.
        await store.ensure(DEFAULT_NAMESPACE)
        return store

    async def images(ctx: InitContext) -> ImageStore:
        return ImageStore(ctx.get(METADATA).db, ctx.get(EVENT))

    async def pull(ctx: InitContext) -> Puller:
        services: dict[str, SnapshotService] = ctx.get(SERVICE, "snapshots")
        default = cfg.default_snapshotter if cfg.default_snapshotter in services else next(iter(services))
        return Puller(ctx.get(CONTENT), services, default, ctx.get(SERVICE, "images"), ctx.get(LEASE),
                      ctx.get(GC), max_concurrent=cfg.max_concurrent_downloads)

    async def remotes(_: InitContext) -> RemoteFactory:
        factory = RemoteFactory(cfg.registry)
        await factory.start()
        return factory

    async def close_remotes(f: RemoteFactory) -> None:
        await f.close()

    for reg in [
        Registration(EVENT, "exchange", events),
        Registration(METADATA, "sqlite", metadata, [f"{EVENT}/exchange"], close=close_metadata),
        Registration(CONTENT, "content", content, [f"{METADATA}/sqlite"]),
        Registration(SNAPSHOTTER, "overlayfs", overlayfs, close=close_snapshotter),
        Registration(SNAPSHOTTER, "native", native, close=close_snapshotter),
        Registration(DIFF, "walking", differ),
        Registration(LEASE, "manager", leases, [f"{METADATA}/sqlite"]),
        Registration(SERVICE, "namespaces", namespaces, [f"{METADATA}/sqlite"]),
        Registration(SERVICE, "images", images, [f"{METADATA}/sqlite"]),
        Registration(SERVICE, "snapshots", snapshots, [f"{METADATA}/sqlite", SNAPSHOTTER]),
        Registration(GC, "scheduler", gc, [f"{METADATA}/sqlite", f"{CONTENT}/content", SNAPSHOTTER]),
        Registration(TRANSFER, "remotes", remotes, close=close_remotes),
        Registration(TRANSFER, "pull", pull, [f"{CONTENT}/content", f"{SERVICE}/snapshots", f"{SERVICE}/images",
                                              f"{LEASE}/manager", f"{GC}/scheduler", f"{DIFF}/walking",
                                              f"{TRANSFER}/remotes"]),
    ]:
        registry.register(reg)
