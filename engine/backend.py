"""What the API handlers share: configuration, the runtime client (in the engine's namespace), state."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import Config
from engine.containers.execs import ExecService
from engine.containers.images import Images
from engine.containers.lifecycle import ContainerService
from engine.containers.monitor import Monitor
from engine.containers.store import ContainerStore
from engine.events import EventBus
from engine.images.store import ImageService
from engine.networks.netavark import NetavarkDriver
from engine.networks.service import NetworkService
from engine.volumes.service import VolumeService
from runtime.client import AlreadyExists, Client, Unavailable

log = logging.getLogger("engine.backend")


@dataclass
class Backend:
    config: Config
    runtime: Client
    started: float = field(default_factory=time.time)
    events: EventBus = field(default_factory=EventBus)
    images: ImageService = field(init=False)
    networks: NetworkService = field(init=False)
    volumes: VolumeService = field(init=False)
    containers: ContainerService = field(init=False)
    execs: ExecService = field(init=False)

    def __post_init__(self) -> None:
        data_root, exec_root = Path(self.config.data_root), Path(self.config.exec_root)
        self.images = ImageService(self)
        self.networks = NetworkService(data_root, exec_root, NetavarkDriver(exec_root / "netavark"),
                                       bridge_interface=self.config.bridge_name, bridge_cidr=self.config.bip)
        self.volumes = VolumeService(data_root)
        self.containers = ContainerService(self.runtime, ContainerStore(data_root / "containers.db"),
                                           Images(self.images), self.events, self.networks, self.volumes)
        self.networks.container_name = self.containers.name_of
        self.volumes.users = self.containers.volume_users
        self.execs = ExecService(self.containers, self.runtime, self.events)

    @property
    def mirrors(self) -> dict[str, list[str]]:
        # dockerd's registry-mirrors apply to Docker Hub only.
        return {"docker.io": list(self.config.registry_mirrors)} if self.config.registry_mirrors else {}

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

    async def run(self) -> None:
        """The daemon's background work: the namespace first, then the container monitor for good."""
        await self.ensure_namespace()
        await Monitor(self.containers, self.runtime, self.config.runtime_namespace).run()
