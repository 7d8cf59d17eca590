"""Kubernetes remotecommand over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`).

Every binary message starts with its channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize.
v5 adds a close signal from the client, [255, channel], that ends one input channel (stdin EOF)
while the socket stays open.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from runtime.cri.streaming.backend import AttachRequest, ExecRequest, StreamingBackend
from runtime.cri.streaming.remotecommand import (TolerantOutput, encode_status, run_session,
                                                 terminal_sizes)

log = logging.getLogger(__name__)

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)

STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)
CLOSE_SIGNAL = 255


class _Channel:
    """An input channel fed by the socket reader: read() gives b"" once it is closed."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._closed = False
        self._ready = asyncio.Event()

    def feed(self, data: bytes) -> None:
        if not self._closed:
            self._buf += data
            self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def read(self, n: int = 65536) -> bytes:
        while not self._buf and not self._closed:
            self._ready.clear()
            await self._ready.wait()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


def negotiate(request: web.Request) -> str | None:
    offered = [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", [])
               for p in h.split(",")]
    return next((p for p in offered if p in PROTOCOLS), None)


async def serve(request: web.Request, session_request: ExecRequest | AttachRequest,
                backend: StreamingBackend) -> web.StreamResponse:
    """Answer a websocket exec/attach request and run it to its end."""
    protocol = negotiate(request)
    if protocol is None:
        raise web.HTTPBadRequest(
            text=f"websocket subprotocol must be one of {', '.join(PROTOCOLS)}")
    ws = web.WebSocketResponse(protocols=(protocol,), autoping=True)
    await ws.prepare(request)
    lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        async with lock:
            await ws.send_bytes(bytes([channel]) + data)

    stdin = _Channel() if session_request.stdin else None
    resize = _Channel() if session_request.tty else None
    inputs = {STDIN: stdin, RESIZE: resize}

    async def pump() -> None:
        """Route the client's messages to the input channels until it closes the socket."""
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            data: bytes = msg.data
            if data[0] == CLOSE_SIGNAL and protocol == V5:
                target = inputs.get(data[1]) if len(data) == 2 else None
                if target is not None:
                    target.close()
                continue
            channel = inputs.get(data[0])
            if channel is not None:
                channel.feed(data[1:])
        for channel in inputs.values():
            if channel is not None:
                channel.close()

    # Like kubelet, an empty message on the first channel the client reads says the streams are up.
    first = STDOUT if session_request.stdout else STDERR if session_request.stderr else ERROR
    await send(first, b"")
    stdout = TolerantOutput(lambda d: send(STDOUT, d)) if session_request.stdout else None
    stderr = (TolerantOutput(lambda d: send(STDERR, d))
              if session_request.stderr and not session_request.tty else None)
    reader = asyncio.create_task(pump())
    session = asyncio.create_task(run_session(
        backend, session_request, stdin, stdout, stderr,
        terminal_sizes(resize) if resize is not None else None))
    try:
        await asyncio.wait({reader, session}, return_when=asyncio.FIRST_COMPLETED)
        if session.done():
            try:
                await send(ERROR, encode_status(session.result(), json_status=True))
            except (ConnectionError, OSError) as e:
                log.debug("websocket closed before the status: %s", e)
        await ws.close()
    finally:
        for task in (session, reader):
            task.cancel()
        await asyncio.gather(session, reader, return_exceptions=True)
    return ws
