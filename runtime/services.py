"""The backends the API routers call, gathered from the loaded plugins."""
from __future__ import annotations

from dataclasses import dataclass

from runtime.containers import ContainerService
from runtime.diff.compare import Comparer
from runtime.events.exchange import Exchange
from runtime.metadata.content import ContentService
from runtime.metadata.gc import Collector
from runtime.metadata.images import ImageStore
from runtime.metadata.ingests import IngestService
from runtime.metadata.leases import LeaseStore
from runtime.metadata.namespaces import NamespaceStore
from runtime.metadata.snapshots import SnapshotService
from runtime.plugins.registry import Registry
from runtime.rootfs.access import RootfsAccess
from runtime.tasks.service import TaskService
from runtime.transfer.pull import Puller
from runtime.transfer.registry import RemoteFactory


@dataclass
class Services:
    plugins: Registry
    events: Exchange
    namespaces: NamespaceStore
    images: ImageStore
    content: ContentService
    leases: LeaseStore
    snapshots: dict[str, SnapshotService]
    default_snapshotter: str
    collector: Collector
    puller: Puller
    remotes: RemoteFactory
    containers: ContainerService
    tasks: TaskService
    rootfs: RootfsAccess
    ingests: IngestService
    differ: Comparer
