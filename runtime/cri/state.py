"""What the CRI plugin's parts share: the runtime services they call, its config and its indexes."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from runtime.containers import ContainerService
from runtime.cri.config import CRIConfig
from runtime.cri.images import ImageCatalog
from runtime.cri.index import Index
from runtime.cri.network import PodNetwork
from runtime.cri.records import (
    CONTAINER,
    KIND_LABEL,
    RECORD_LABEL,
    SANDBOX,
    ContainerRecord,
    SandboxRecord,
    container_name,
    sandbox_name,
)
from runtime.cri.scope import in_namespace
from runtime.errors import NotFound
from runtime.events.exchange import Exchange
from runtime.metadata.content import ContentService
from runtime.metadata.snapshots import SnapshotService
from runtime.tasks.service import TaskService
from runtime.tasks.state import TaskState

log = logging.getLogger("runtime.cri")


@dataclass
class CRIState:
    config: CRIConfig
    state_dir: Path  # volatile: pods' /etc files and /dev/shm mounts
    containers: ContainerService
    tasks: TaskService
    content: ContentService
    catalog: ImageCatalog
    network: PodNetwork
    events: Exchange
    snapshots: dict[str, SnapshotService]
    sandboxes: Index[SandboxRecord] = field(default_factory=lambda: Index("sandbox"))
    cri_containers: Index[ContainerRecord] = field(default_factory=lambda: Index("container"))

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.state_dir / "sandboxes" / sandbox_id

    def task(self, container_id: str) -> TaskState | None:
        with in_namespace(self.namespace):
            try:
                return self.tasks.get(container_id)
            except NotFound:
                return None

    async def delete_runtime_container(self, container_id: str) -> None:
        """Its task (killed if it still runs) and its record; what is already gone is no error."""
        with in_namespace(self.namespace):
            if self.task(container_id) is not None:
                await self.tasks.delete(container_id, force=True)
            try:
                await self.containers.delete(container_id)
            except NotFound:
                pass

    def containers_of(self, sandbox_id: str) -> list[ContainerRecord]:
        return [c for c in self.cri_containers.values() if c.sandbox_id == sandbox_id]

    async def load(self) -> None:
        """Rebuild the indexes from the runtime's container records (a restart finds every pod again)."""
        with in_namespace(self.namespace):
            records = await self.containers.store.list()
        for c in records:
            kind = c.labels.get(KIND_LABEL)
            raw = c.labels.get(RECORD_LABEL)
            if raw is None:
                continue
            if kind == SANDBOX:
                s = SandboxRecord.model_validate_json(raw)
                self.sandboxes.add(s.id, s)
                self.sandboxes.reserve(sandbox_name(s.pod_config().metadata), s.id)
            elif kind == CONTAINER:
                r = ContainerRecord.model_validate_json(raw)
                self.cri_containers.add(r.id, r)
        for r in self.cri_containers.values():
            pod = self.sandboxes.find(r.sandbox_id)
            if pod is not None:
                self.cri_containers.reserve(container_name(r.container_config().metadata,
                                                           pod.pod_config().metadata), r.id)
        log.info("cri loaded sandboxes=%d containers=%d", len(self.sandboxes.values()),
                 len(self.cri_containers.values()))


def pod_dirs(state: CRIState, sandbox_id: str) -> tuple[str, str]:
    d = state.sandbox_dir(sandbox_id)
    return str(d / "etc"), str(d / "shm")


def ensure_dir(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)
