"""The CRI plugin: both CRI services on one gRPC unix socket, served on the runtime's event loop.

Registered in the runtime's plugin registry (`pyctr plugins list` shows it, or why it was skipped):
it needs the containers, tasks, images and pull services, and skips itself when disabled in the
`[cri]` section or when its socket is held by a live process (another runtime on the same host).

The gRPC server starts with the runtime when the runtime already holds CRI pods or containers; otherwise
the socket is activated by its first client (runtime/cri/activation.py), so a runtime that no kubelet
talks to never loads grpc.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.cri.activation import SocketActivation
from runtime.cri.config import CRIConfig
from runtime.cri.deps import Dependencies
from runtime.cri.network import PodNetwork
from runtime.cri.scope import in_namespace
from runtime.plugins.registry import SkipPlugin

if TYPE_CHECKING:
    from runtime.cri.serving import Serving

log = logging.getLogger("runtime.cri")


def _claim_socket(path: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    if p.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            p.unlink()  # a dead daemon's leftover
        else:
            raise SkipPlugin(f"{path} is served by another process")
        finally:
            probe.close()
    elif p.exists():
        raise SkipPlugin(f"{path} exists and is not a socket")


@dataclass
class CRIPlugin:
    config: CRIConfig
    state_dir: Path
    deps: Dependencies
    network: PodNetwork
    serving: Serving | None = None
    activation: SocketActivation | None = field(default=None, repr=False)

    async def serve(self, address: str) -> None:
        from runtime.cri.serving import serve  # grpc and the CRI's protobuf modules load here

        self.serving = await serve(self.config, self.state_dir, self.deps, self.network, address)

    async def close(self) -> None:
        if self.activation is not None:
            await self.activation.close()
        if self.serving is not None:
            await self.serving.close()
        try:
            os.unlink(self.config.address)
        except FileNotFoundError:
            pass


async def start(config: CRIConfig, state_root: Path, deps: Dependencies, network: PodNetwork) -> CRIPlugin:
    if not config.enabled:
        raise SkipPlugin("disabled in the [cri] section of the configuration")
    _claim_socket(config.address)
    await deps.namespaces.ensure(config.namespace)
    state_dir = state_root / "cri"
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    plugin = CRIPlugin(config, state_dir, deps, network)
    with in_namespace(config.namespace):
        held = await deps.containers.store.list()
    if held:
        await plugin.serve(config.address)
        return plugin
    # Nothing of the CRI's survives to be served: only what a crash left of pod networks to tear down.
    await network.sweep(set())
    plugin.activation = SocketActivation(config.address, plugin.serve)
    plugin.activation.listen()
    log.info("cri listening address=%s namespace=%s (gRPC starts with the first client)", config.address,
             config.namespace)
    return plugin
