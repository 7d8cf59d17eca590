"""What the API handlers share: configuration, the runtime client (in the engine's namespace), state."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from engine.config import Config
from runtime.client import AlreadyExists, Client, Unavailable

log = logging.getLogger("engine.backend")


@dataclass
class Backend:
    config: Config
    runtime: Client
    started: float = field(default_factory=time.time)

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
