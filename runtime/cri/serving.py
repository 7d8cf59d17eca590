"""The CRI's gRPC side: its state rebuilt from the runtime's records, the streaming server and the gRPC
server with both CRI services. Imported only when the plugin activates (runtime/cri/plugin.py): grpc and
the CRI's protobuf modules cost the runtime about 12 MiB that a host without a kubelet never uses.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from cri_api.v1 import api_pb2_grpc

from runtime.cri.config import CRIConfig
from runtime.cri.deps import Dependencies
from runtime.cri.images import ImageCatalog, ImageServicer
from runtime.cri.network import PodNetwork
from runtime.cri.runtime_service import RuntimeServicer
from runtime.cri.state import CRIState
from runtime.cri.stream_backend import StreamURLAdapter, TaskStreams
from runtime.cri.streaming.server import StreamingServer

log = logging.getLogger("runtime.cri")


@dataclass
class Serving:
    state: CRIState
    server: grpc.aio.Server
    runtime: RuntimeServicer
    streaming: StreamingServer

    async def close(self) -> None:
        await self.server.stop(grace=1)
        await self.streaming.stop()


async def serve(config: CRIConfig, state_dir: Path, deps: Dependencies, network: PodNetwork,
                address: str) -> Serving:
    """Load the CRI's pods and containers and serve both services on the unix socket `address`."""
    catalog = ImageCatalog(config.namespace, deps.images, deps.content, deps.puller, deps.remotes, deps.collector)
    state = CRIState(config=config, state_dir=state_dir, containers=deps.containers, tasks=deps.tasks,
                     content=deps.content, catalog=catalog, network=network, events=deps.events,
                     snapshots=deps.snapshots)
    await state.load()
    await network.sweep({s.id for s in state.sandboxes.values()})
    # The image filesystem the kubelet watches is the one the CRI's snapshotter keeps its layers on.
    name = config.snapshotter or deps.puller.default_snapshotter
    if name not in deps.snapshots:
        raise RuntimeError(f"[cri] snapshotter {name!r} is not loaded (have: {', '.join(sorted(deps.snapshots))})")
    roots = [str(getattr(deps.snapshots[name].backend, "root", state_dir))]
    streaming = StreamingServer(TaskStreams(state), config.stream_address, config.stream_port)
    await streaming.start()
    runtime = RuntimeServicer(state, StreamURLAdapter(streaming))
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 * 1024 * 1024),
                                      ("grpc.max_send_message_length", 16 * 1024 * 1024)])
    # The generated registration functions carry no annotations.
    images = ImageServicer(catalog, roots)
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime, server)  # type: ignore[no-untyped-call]
    api_pb2_grpc.add_ImageServiceServicer_to_server(images, server)  # type: ignore[no-untyped-call]
    old = os.umask(0o117)
    try:
        server.add_insecure_port(f"unix://{address}")
        await server.start()
    except BaseException:
        await streaming.stop()
        raise
    finally:
        os.umask(old)
    os.chmod(address, 0o660)
    log.info("cri serving address=%s namespace=%s streaming=%s", config.address, config.namespace,
             streaming.address)
    return Serving(state, server, runtime, streaming)
