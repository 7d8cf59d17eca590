"""The runtime services the CRI plugin runs on (gathered by its registration)."""
from __future__ import annotations

from dataclasses import dataclass

from runtime.containers import ContainerService
from runtime.events.exchange import Exchange
from runtime.metadata.content import ContentService
from runtime.metadata.gc import Collector
from runtime.metadata.images import ImageStore
from runtime.metadata.namespaces import NamespaceStore
from runtime.metadata.snapshots import SnapshotService
from runtime.tasks.service import TaskService
from runtime.transfer.pull import Puller
from runtime.transfer.registry import RemoteFactory


@dataclass
class Dependencies:
    containers: ContainerService
    tasks: TaskService
    images: ImageStore
    content: ContentService
    puller: Puller
    remotes: RemoteFactory
    collector: Collector
    events: Exchange
    snapshots: dict[str, SnapshotService]
    namespaces: NamespaceStore
