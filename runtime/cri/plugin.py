"""The CRI plugin: both CRI services on one gRPC unix socket, served on the runtime's event loop.

Registered in the runtime's plugin registry (`pyctr plugins list` shows it, or why it was skipped):
it needs the containers, tasks, images and pull services, and skips itself when disabled in the
`[cri]` section or when its socket is held by a live process (another runtime on the same host).
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc
from cri_api.v1 import api_pb2_grpc

from runtime.containers import ContainerService
from runtime.cri.config import CRIConfig
from runtime.cri.images import ImageCatalog, ImageServicer
from runtime.cri.network import PodNetwork
from runtime.cri.runtime_service import RuntimeServicer
from runtime.cri.stream_backend import StreamURLAdapter, TaskStreams
from runtime.cri.streaming.server import StreamingServer
from runtime.cri.state import CRIState
from runtime.events.exchange import Exchange
from runtime.metadata.content import ContentService
from runtime.metadata.gc import Collector
from runtime.metadata.images import ImageStore
from runtime.metadata.namespaces import NamespaceStore
from runtime.metadata.snapshots import SnapshotService
from runtime.plugins.registry import SkipPlugin
from runtime.tasks.service import TaskService
from runtime.transfer.pull import Puller
from runtime.transfer.registry import RemoteFactory

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
    state: CRIState
    server: grpc.aio.Server
    runtime: RuntimeServicer
    streaming: StreamingServer

    async def close(self) -> None:
        await self.server.stop(grace=1)
        await self.streaming.stop()
        try:
            os.unlink(self.config.address)
        except FileNotFoundError:
            pass


@dataclass
class Dependencies:
    """The runtime services the plugin runs on (gathered by its registration)."""

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


async def start(config: CRIConfig, state_root: Path, deps: Dependencies, network: PodNetwork) -> CRIPlugin:
    if not config.enabled:
        raise SkipPlugin("disabled in the [cri] section of the configuration")
    _claim_socket(config.address)
    await deps.namespaces.ensure(config.namespace)
    state_dir = state_root / "cri"
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    catalog = ImageCatalog(config.namespace, deps.images, deps.content, deps.puller, deps.remotes, deps.collector)
    state = CRIState(config=config, state_dir=state_dir, containers=deps.containers, tasks=deps.tasks,
                     content=deps.content, catalog=catalog, network=network, events=deps.events,
                     snapshots=deps.snapshots)
    await state.load()
    await network.sweep({s.id for s in state.sandboxes.values()})
    streaming = StreamingServer(TaskStreams(state), config.stream_address, config.stream_port)
    await streaming.start()
    runtime = RuntimeServicer(state, StreamURLAdapter(streaming))
    # The image filesystem the kubelet watches is the one the CRI's snapshotter keeps its layers on.
    name = config.snapshotter or deps.puller.default_snapshotter
    if name not in deps.snapshots:
        raise RuntimeError(f"[cri] snapshotter {name!r} is not loaded (have: {', '.join(sorted(deps.snapshots))})")
    snapshotter = deps.snapshots[name]
    roots = [str(getattr(snapshotter.backend, "root", state_dir))]
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 * 1024 * 1024),
                                      ("grpc.max_send_message_length", 16 * 1024 * 1024)])
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime, server)
    api_pb2_grpc.add_ImageServiceServicer_to_server(ImageServicer(catalog, roots), server)
    old = os.umask(0o117)
    try:
        server.add_insecure_port(f"unix://{config.address}")
        await server.start()
    except BaseException:
        await streaming.stop()
        raise
    finally:
        os.umask(old)
    os.chmod(config.address, 0o660)
    log.info("cri serving address=%s namespace=%s streaming=%s", config.address, config.namespace,
             streaming.address)
    return CRIPlugin(config, state, server, runtime, streaming)
