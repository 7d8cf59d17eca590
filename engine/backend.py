"""The engine's services, built and wired in one place; the API routers get this bag of them.

No service holds another's whole: each gets the runtime client, the event bus, its store and
the narrow views it needs of the others (the container records answer who uses a name, a
volume or an image). Construction order is the dependency order, with no wiring afterwards.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.builder.cache import BuildCache
from engine.config import Config
from engine.prune_guard import PruneGuard
from engine.containers import dockerenv
from engine.containers.create import ContainerDefaults, Creator
from engine.containers.departures import Departures
from engine.containers.describe import Describer
from engine.containers.execs import ExecService
from engine.containers.filesystem import ContainerFiles
from engine.containers.hostlimits import HostFeatures
from engine.containers.images import Images
from engine.containers.image_mounts import ImageMounts
from engine.containers.ipc import IpcNamespaces
from engine.containers.linkedit import LinkEditor
from engine.containers.live import Lives
from engine.containers.manage import Manager
from engine.containers.monitor import Monitor
from engine.containers.donor_namespaces import DonorNamespaces, without_network
from engine.containers.pins import RunPins
from engine.containers.prune import ContainerPruner
from engine.containers.reconcile import Reconciler
from engine.containers.request import Ulimit
from engine.containers.run import RunControl
from engine.containers.stats import ContainerStats
from engine.containers.store import ContainerStore
from engine.containers.subpaths import Subpaths
from engine.containers.supervise import Supervisor
from engine.events import EventBus
from engine.images.auth import RegistryLogin
from engine.images.push import ImagePusher
from engine.images.archive import ImageArchives
from engine.images.parents import Parents
from engine.images.store import ImageService, Registries
from engine.images.writer import ImageWriter
from engine.lazy import Lazy
from engine.logs.retention import RemovedLogs
from engine.logs.service import ContainerLogs
from engine.metrics.service import EngineMetrics
from engine.networks import ipam
from engine.networks.etcfiles import DnsDefaults
from engine.networks.netavark import NetavarkDriver
from engine.networks.service import NetworkService
from engine.runtimes import RuntimeTable
from engine.system import SystemInfo
from engine.storage.budget import Budget, LastUse
from engine.storage.ledger import DiskLedger, block_size
from engine.system_df import DiskUsage
from engine.volumes.service import VolumeService
from runtime.client import AlreadyExists, Client, RuntimeAPI, Unavailable

if TYPE_CHECKING:
    from engine.builder.context import ContextStore
    from engine.builder.service import Builder
    from engine.images.commit import Committer
    from engine.images.importer import Importer

log = logging.getLogger("engine.backend")

CONTEXTS = "contexts"  # under <data-root>/builder: the build contexts being received


@dataclass
class Backend:
    config: Config
    runtime: RuntimeAPI
    host: HostFeatures
    events: EventBus
    containers: ContainerStore
    images: ImageService
    archives: ImageArchives
    networks: NetworkService
    volumes: VolumeService
    creator: Creator
    run: RunControl
    departures: Departures
    manager: Manager
    execs: ExecService
    reconciler: Reconciler
    files: ContainerFiles
    stats: ContainerStats
    describer: Describer
    pruner: ContainerPruner
    system: SystemInfo
    disk: DiskUsage
    logs: ContainerLogs
    # Built on first use (engine/lazy.py): an engine that only pulls and runs never loads their code.
    committer: Lazy[Committer]
    importer: Lazy[Importer]
    contexts: Lazy[ContextStore]
    build_cache: BuildCache
    builder: Lazy[Builder]
    pusher: ImagePusher
    logins: RegistryLogin
    metrics: EngineMetrics
    ledger: DiskLedger
    budget: Budget
    started: float = field(default_factory=time.time)
    prunes: PruneGuard = field(default_factory=PruneGuard)

    @classmethod
    def build(cls, config: Config, runtime: Client, events: EventBus | None = None) -> Backend:
        data_root, exec_root = Path(config.data_root), Path(config.exec_root)
        events = events or EventBus()
        host = HostFeatures(runtime)
        store = ContainerStore(data_root / "containers.db")
        lives = Lives(store)
        # dockerd's registry-mirrors apply to Docker Hub only.
        mirrors = {"docker.io": list(config.registry_mirrors)} if config.registry_mirrors else {}
        departures = Departures(runtime)
        images = ImageService(runtime, events, store, Registries(
            mirrors, list(config.insecure_registries), config.max_concurrent_downloads, config.max_concurrent_uploads),
            departures, Parents(data_root / "image-parents.db"))
        networks = NetworkService(data_root, exec_root, NetavarkDriver(exec_root / "netavark"),
                                  bridge_interface=config.bridge_name, bridge_cidr=config.bip,
                                  container_name=store.name_of, container_hostname=store.hostname_of,
                                  events=events, binding_ip=config.ip, mtu=config.mtu,
                                  pools=tuple(p.pool() for p in config.default_address_pools) or ipam.DEFAULT_POOLS,
                                  dns=DnsDefaults(tuple(config.dns), tuple(config.dns_search), tuple(config.dns_opts)))
        volumes = VolumeService(data_root, users=store.volume_users, running=store.running_volume_users)
        supervisor = Supervisor(runtime, store, lives, events)
        retention = RemovedLogs(data_root / "removed-logs", config.removed_logs_retention)
        logs = ContainerLogs(data_root / "containers", config.log_driver, config.log_opts, retention,
                             config.journald_socket)
        pins = RunPins(IpcNamespaces(exec_root / "ipc", store),
                       DonorNamespaces(exec_root / "pid", store, "pid", "PidMode", "PID",
                                       "container {id} is not running"),
                       DonorNamespaces(exec_root / "net-joins", store, "net", "NetworkMode", "network",
                                       "cannot join network of a non running container: {id}", without_network),
                       Subpaths(exec_root / "volume-subpaths"), volumes.mountpoint,
                       ImageMounts(exec_root / "image-mounts", runtime))
        runtimes = RuntimeTable(config)
        link_editor = LinkEditor(store, lives, networks)
        run = RunControl(runtime, store, lives, events, networks, volumes, supervisor, logs, pins, runtimes, departures,
                         link_editor)
        files = ContainerFiles(runtime, store, events, volumes)
        execs = ExecService(store, runtime, events, networks.bridge_address, run.run_over)
        image_view = Images(images, events)
        describer = Describer(store, networks, volumes.mountpoint, files, execs.live_ids, logs.path,
                              image_view.ids_of, image_view.lineage)
        creator = Creator(runtime, store, lives, image_view, events, networks, volumes, host, pins, logs.resolve,
                          runtimes, dockerenv.ensure(data_root), unpack=runtime.unpack_image,
                          defaults=ContainerDefaults(
                              ulimits=tuple(Ulimit(**u.model_dump()) for u in config.default_ulimits.values()),
                              shm_size=config.default_shm_size, no_new_privileges=config.no_new_privileges,
                              init=config.init, ipc_mode=config.default_ipc_mode,
                              cgroupns_mode=config.default_cgroupns_mode))
        writer = ImageWriter(runtime, images)
        build_cache = BuildCache(runtime, images, config.runtime_namespace,
                                 lambda: shutil.disk_usage(data_root).free)
        builder_root = data_root / "builder"
        ledger = DiskLedger(runtime, images, store, volumes, events, retention, "overlayfs",
                            block_size(str(data_root)), build_cache.usage, config.runtime_namespace)
        return cls(config=config, runtime=runtime, host=host, events=events, containers=store, images=images,
                   archives=ImageArchives(runtime, images, events),
                   networks=networks, volumes=volumes, creator=creator, run=run, departures=departures,
                   manager=Manager(runtime, store, lives, events, host, link_editor, run.health, networks),
                   execs=execs,
                   reconciler=Reconciler(runtime, store, lives, run, supervisor, networks, time.time()),
                   files=files, stats=ContainerStats(runtime, store), describer=describer,
                   pruner=ContainerPruner(store, files.size, run),
                   system=SystemInfo(runtime, host, config, store, images, events),
                   disk=DiskUsage(ledger, store, volumes, describer.summary), ledger=ledger,
                   budget=Budget(config.storage_budget, ledger, images, build_cache, store, events,
                                 LastUse(data_root / "image-last-use.json")),
                   logs=logs, committer=Lazy(lambda: _committer(runtime, writer, images, events)),
                   importer=Lazy(lambda: _importer(writer, events)),
                   contexts=Lazy(lambda: _contexts(builder_root)), build_cache=build_cache,
                   builder=Lazy(lambda: _builder(runtime, images, writer, build_cache, creator, run, builder_root)),
                   pusher=ImagePusher(images, runtime), logins=RegistryLogin(runtime, images.registries.insecure),
                   metrics=EngineMetrics(runtime, store, events))

    async def ensure_namespace(self) -> None:
        """The engine's runtime namespace exists before its first request; the runtime may come up later."""
        delay = 0.1
        while True:
            try:
                await self.runtime.create_namespace(self.config.runtime_namespace, {"io.pyengine.owner": "pyengined"})
                return
            except AlreadyExists:
                return
            except Unavailable as e:
                log.warning("runtime not reachable yet (%s); retrying", e.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run_background(self) -> None:
        """The daemon's background work: the namespace first, then the container monitor for good."""
        await self.ensure_namespace()
        if dropped := await self.archives.drop_leftover_leases(self.started):
            log.info("dropped the leases of unfinished operations: %s", ", ".join(dropped))
        await asyncio.to_thread(_fresh_dirs, Path(self.config.data_root) / "builder", ("cache-mounts",),
                                ("steps", CONTEXTS))
        async with asyncio.TaskGroup() as tg:
            # Disk budgets (engine/storage/): usage kept current, the budget enforced, expired logs deleted.
            self.ledger.everything_changed()
            tg.create_task(self.ledger.follow_store(), name="disk-ledger-store")
            tg.create_task(self.build_cache.index.follow(), name="build-cache-index")
            budget = self.config.storage_budget
            tg.create_task(self.ledger.sweep(budget.interval if budget else 60.0), name="disk-ledger-sweep")
            tg.create_task(self.budget.run(), name="storage-budget")
            if self.logs.retention is not None:
                tg.create_task(self.logs.retention.run(), name="removed-logs")
            await Monitor(self.run, self.reconciler, self.runtime, self.config.runtime_namespace,
                          self.execs.exit_told).run()


def _fresh_dirs(root: Path, kept: tuple[str, ...], emptied: tuple[str, ...]) -> None:
    """The builder's work directories exist, 0700; what a crashed daemon left in `emptied` ones is gone (its
    half-done steps, the build contexts it was receiving), what `kept` ones hold stays (cache mounts)."""
    for name in kept + emptied:
        path = root / name
        if name in emptied and path.exists():
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)


# The factories of the services built on first use: their imports are the point (engine/lazy.py).

def _builder(runtime: Client, images: ImageService, writer: ImageWriter, cache: BuildCache, creator: Creator,
             run: RunControl, root: Path) -> Builder:
    from engine.builder.copy_files import CopyFiles
    from engine.builder.run_step import CacheMounts, RunStep
    from engine.builder.service import Builder
    return Builder(images, writer, cache, RunStep(creator, run, runtime, CacheMounts(root / "cache-mounts")),
                   CopyFiles(runtime, root / "steps"), runtime)


def _contexts(root: Path) -> ContextStore:
    from engine.builder.context import ContextStore
    return ContextStore(root / CONTEXTS)


def _committer(runtime: Client, writer: ImageWriter, images: ImageService, events: EventBus) -> Committer:
    from engine.images.commit import Committer
    return Committer(runtime, writer, images, events)


def _importer(writer: ImageWriter, events: EventBus) -> Importer:
    from engine.images.importer import Importer
    return Importer(writer, events)
