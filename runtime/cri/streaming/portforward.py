"""Kubernetes port-forward (`portforward.k8s.io`) over SPDY.

For every connection it forwards, the client opens two streams with the same `requestID` and
`port` headers: an error stream (which it never writes to) and a data stream. The server joins
the data stream to a TCP connection to that port inside the sandbox, and writes any failure as
text to the error stream; finishing the data and error streams tells the client the forward is over.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from runtime.cri.streaming import spdy
from runtime.cri.streaming.backend import PortForwardRequest, StreamingBackend
from runtime.cri.streaming.spdy_connection import SpdyConnection, SpdyStream, StreamReset

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
# A pair whose other half does not arrive within this time is abandoned (kubelet's default).
PAIR_TIMEOUT = 30.0


@dataclass
class _Pair:
    request_id: str
    streams: dict[str, SpdyStream] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


async def _copy_to_stream(reader: asyncio.StreamReader, stream: SpdyStream) -> None:
    while data := await reader.read(65536):
        await stream.write(data)


async def _copy_to_socket(stream: SpdyStream, writer: asyncio.StreamWriter) -> None:
    while data := await stream.read():
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def _forward(backend: StreamingBackend, request: PortForwardRequest, pair: _Pair) -> None:
    data, error = pair.streams["data"], pair.streams["error"]
    port_text = data.header("port") or ""
    try:
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            raise ValueError(f"invalid port {port_text!r}") from None
        if request.ports and port not in request.ports:
            raise ValueError(f"port {port} was not requested for forwarding")
        reader, writer = await backend.port_forward(request.sandbox_id, port)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # reported to the client on its error stream, as kubelet does
        await _fail(pair, f"error forwarding port {port_text} to pod {request.sandbox_id}: {e}")
        return
    inbound = asyncio.create_task(_copy_to_socket(data, writer))
    try:
        await _copy_to_stream(reader, data)
        await data.close()
        await error.close()
        # The client finishes its half once it has seen ours; what it still sends goes through.
        await inbound
    except (StreamReset, ConnectionError, OSError) as e:
        log.debug("port-forward %s:%d ended: %s", request.sandbox_id, port, e)
    finally:
        inbound.cancel()
        await asyncio.gather(inbound, return_exceptions=True)
        data.discard()
        writer.close()


async def _fail(pair: _Pair, message: str) -> None:
    log.info("%s", message)
    error, data = pair.streams["error"], pair.streams.get("data")
    if data is not None:
        data.discard()
    try:
        await error.write(message.encode())
        await error.close()
        if data is not None:
            await data.close()
    except (StreamReset, ConnectionError, OSError):
        pass


async def serve_spdy(conn: SpdyConnection, request: PortForwardRequest,
                     backend: StreamingBackend) -> None:
    """Serve port-forward streams until the client hangs up."""
    reader = asyncio.create_task(conn.serve())
    pairs: dict[str, _Pair] = {}
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    def expire(pair: _Pair) -> None:
        if pairs.pop(pair.request_id, None) is pair:
            for stream in pair.streams.values():
                tasks.add(loop.create_task(stream.reset(spdy.CANCEL)))

    try:
        while (stream := await conn.accept()) is not None:
            kind = (stream.header("streamtype") or "").lower()
            request_id = stream.header("requestid")
            if kind not in ("data", "error") or request_id is None:
                await stream.reset(spdy.REFUSED_STREAM)
                continue
            pair = pairs.setdefault(request_id, _Pair(request_id))
            if kind in pair.streams:
                await stream.reset(spdy.PROTOCOL_ERROR)
                continue
            await stream.reply()
            pair.streams[kind] = stream
            if len(pair.streams) == 1:
                pair.timer = loop.call_later(PAIR_TIMEOUT, expire, pair)
                continue
            del pairs[request_id]
            if pair.timer is not None:
                pair.timer.cancel()
            task = loop.create_task(_forward(backend, request, pair))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for pair in pairs.values():
            if pair.timer is not None:
                pair.timer.cancel()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.close()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
