"""Registrations of every built-in runtime component."""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.config import Config
from runtime.containers import ContainerService
from runtime.content.local import LocalStore
from runtime.cri.cni.manager import CNIManager
from runtime.cri.cni.netns import NetnsDir
from runtime.cri.pod_network import CNIPodNetwork
from runtime.cri.deps import Dependencies as CRIDependencies
from runtime.cri.plugin import CRIPlugin
from runtime.cri.plugin import start as start_cri
from runtime.diff.compare import Comparer
from runtime.events.exchange import Exchange
from runtime.events.journal import FILENAME as JOURNAL_FILE
from runtime.events.journal import Journal
from runtime.metadata.containers import ContainerStore
from runtime.metadata.content import ContentService
from runtime.metadata.db import Database
from runtime.metadata.gc import Collector
from runtime.metadata.images import ImageStore
from runtime.metadata.ingests import IngestService
from runtime.metadata.leases import LeaseStore
from runtime.metadata.namespaces import NamespaceStore
from runtime.metadata.snapshots import SnapshotService
from runtime.plugins.registry import InitContext, Registration, Registry, SkipPlugin
from runtime.rootfs.access import RootfsAccess
from runtime.snapshots.native import NativeSnapshotter
from runtime.snapshots.overlay import OverlaySnapshotter
from runtime.snapshots.overlay import supported as overlay_supported
from runtime.tasks import cgroups
from runtime.tasks.conmon import CONMON
from runtime.tasks.conmon_shim import ConmonShim, Unusable, probe
from runtime.tasks.service import TaskService
from runtime.transfer.pull import Puller
from runtime.transfer.registry import RemoteFactory
from runtime.wire import DEFAULT_NAMESPACE

log = logging.getLogger("runtime.plugins")

EVENT = "io.pyengine.event.v1"
METADATA = "io.pyengine.metadata.v1"
CONTENT = "io.pyengine.content.v1"
SNAPSHOTTER = "io.pyengine.snapshotter.v1"
DIFF = "io.pyengine.differ.v1"
LEASE = "io.pyengine.lease.v1"
GC = "io.pyengine.gc.v1"
TRANSFER = "io.pyengine.transfer.v1"
SERVICE = "io.pyengine.service.v1"
RUNTIME = "io.pyengine.runtime.v1"
GRPC = "io.pyengine.grpc.v1"


@dataclass
class Metadata:
    db: Database
    # Serialises GC against commits that make new things reachable.
    gc_lock: asyncio.Lock


def register_all(registry: Registry, cfg: Config) -> None:
    root = Path(cfg.root)

    async def events(_: InitContext) -> Exchange:
        journal = Journal(root / JOURNAL_FILE, cfg.events_retention.retention())
        return Exchange(journal, await asyncio.to_thread(journal.open))

    async def close_events(e: Exchange) -> None:
        await e.close()

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
        store = LeaseStore(ctx.get(METADATA).db)
        for lease in await store.drop_interrupted():
            log.warning("dropped lease=%s of an operation the runtime's previous run did not finish", lease)
        return store

    async def snapshots(ctx: InitContext) -> dict[str, SnapshotService]:
        m: Metadata = ctx.get(METADATA)
        backends = ctx.get_all(SNAPSHOTTER)
        if not backends:
            raise SkipPlugin("no snapshotter loaded")
        services = {name: SnapshotService(name, b, m.db, ctx.get(EVENT), m.gc_lock) for name, b in backends.items()}
        for service in services.values():
            for key in await service.remove_leftover_temporaries():
                log.warning("removed snapshot=%s an operation the runtime's previous run did not finish left", key)
        return services

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

    def oci_runtime(name: str, path: str) -> Registration:
        async def init(_: InitContext) -> ConmonShim:
            try:
                version = await probe(path)
            except Unusable as e:
                raise SkipPlugin(str(e)) from None
            if name == "crun" and cgroups.detect_mode() == cgroups.CgroupMode.HYBRID:
                raise RuntimeError("crun refuses hybrid cgroup hierarchies (cgroup v1 controllers beside a v2 mount)")
            if not os.access(CONMON, os.X_OK):
                raise SkipPlugin(f"{CONMON} is not installed")
            return ConmonShim(name, path, str(Path(cfg.state) / "runc" / name), log_size_max=cfg.task_log_max_size,
                              version=version)

        return Registration(RUNTIME, name, init)

    async def containers(ctx: InitContext) -> ContainerService:
        m: Metadata = ctx.get(METADATA)
        snaps: dict[str, SnapshotService] = ctx.get(SERVICE, "snapshots")
        default = cfg.default_snapshotter if cfg.default_snapshotter in snaps else next(iter(snaps))
        service = ContainerService(root, cfg.cgroup_root, ContainerStore(m.db, ctx.get(EVENT)),
                                   ctx.get(SERVICE, "images"), ctx.get(CONTENT),
                                   snaps, default, set(ctx.get_all(RUNTIME)))
        await service.sweep_scratch()
        await service.remove_orphaned_snapshots()
        return service

    async def tasks(ctx: InitContext) -> TaskService:
        service = TaskService(root, Path(cfg.state), ctx.get(SERVICE, "containers").store,
                              ctx.get(SERVICE, "snapshots"), ctx.get_all(RUNTIME), ctx.get(EVENT))
        await service.start_watching()
        return service

    async def close_tasks(t: TaskService) -> None:
        await t.close()

    async def rootfs(ctx: InitContext) -> RootfsAccess:
        access = RootfsAccess(root, Path(cfg.state), ctx.get(SERVICE, "containers").store,
                              ctx.get(SERVICE, "snapshots"), ctx.get(SERVICE, "tasks"))
        await access.cleanup()
        return access

    async def ingests(ctx: InitContext) -> IngestService:
        return IngestService(ctx.get(CONTENT))

    async def diff(ctx: InitContext) -> Comparer:
        comparer = Comparer(ctx.get(CONTENT), ctx.get(SERVICE, "snapshots"), ctx.get(SERVICE, "containers").store,
                            Path(cfg.state) / "diff")
        await comparer.cleanup()
        return comparer

    async def cri(ctx: InitContext) -> CRIPlugin:
        deps = CRIDependencies(
            containers=ctx.get(SERVICE, "containers"), tasks=ctx.get(SERVICE, "tasks"),
            images=ctx.get(SERVICE, "images"), content=ctx.get(CONTENT), puller=ctx.get(TRANSFER, "pull"),
            remotes=ctx.get(TRANSFER, "remotes"), collector=ctx.get(GC), events=ctx.get(EVENT),
            snapshots=ctx.get(SERVICE, "snapshots"), namespaces=ctx.get(SERVICE, "namespaces"))
        cri_state = Path(cfg.state) / "cri"
        network = CNIPodNetwork(CNIManager(str(cri_state / "cni"), cfg.cri.cni_conf_dir, cfg.cri.cni_bin_dirs),
                                NetnsDir(str(cri_state / "netns")))
        return await start_cri(cfg.cri, Path(cfg.state), deps, network)

    async def close_cri(p: CRIPlugin) -> None:
        await p.close()

    for reg in [
        Registration(EVENT, "exchange", events, close=close_events),
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
        oci_runtime("runc", "/usr/sbin/runc"),
        oci_runtime("crun", "/usr/bin/crun"),
        Registration(SERVICE, "containers", containers, [f"{METADATA}/sqlite", f"{SERVICE}/snapshots",
                                                         f"{SERVICE}/images", f"{CONTENT}/content", RUNTIME]),
        Registration(SERVICE, "tasks", tasks, [f"{SERVICE}/containers", RUNTIME], close=close_tasks),
        Registration(SERVICE, "rootfs", rootfs, [f"{SERVICE}/containers", f"{SERVICE}/tasks"]),
        Registration(SERVICE, "ingests", ingests, [f"{CONTENT}/content"]),
        Registration(SERVICE, "diff", diff, [f"{CONTENT}/content", f"{SERVICE}/snapshots", f"{SERVICE}/containers",
                                             f"{DIFF}/walking"]),
        Registration(TRANSFER, "pull", pull, [f"{CONTENT}/content", f"{SERVICE}/snapshots", f"{SERVICE}/images",
                                              f"{LEASE}/manager", f"{GC}/scheduler", f"{DIFF}/walking",
                                              f"{TRANSFER}/remotes"]),
        Registration(GRPC, "cri", cri, [f"{SERVICE}/namespaces", f"{SERVICE}/containers", f"{SERVICE}/tasks", f"{TRANSFER}/pull",
                                        f"{SERVICE}/images", f"{GC}/scheduler"], close=close_cri),
    ]:
        registry.register(reg)
