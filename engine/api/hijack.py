"""Hijacked connections (attach, exec start): `101 UPGRADED`, then a raw byte pipe both ways.

aiohttp hands the connection over the way its websocket support does: a payload
parser installed with `request.protocol.set_parser()` receives every byte after the
request. One thing aiohttp does not allow for is a half-close: its protocol answers
EOF by closing the transport, while the docker CLI shuts down its sending side right
after the 101 when it has no stdin and still expects all the output. So the
transport's protocol is wrapped to keep the connection open on EOF, which here only
means "stdin is over".
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from engine.api import versions

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
# Stdin buffered from the client beyond this pauses reading from it until the process catches up.
_STDIN_HIGH_WATER = 1 << 20
# How long an ended stream waits for its client to close, reading and dropping the stdin it still sends.
_LINGER = 2.0


class _RawParser:
    """aiohttp's payload-parser interface, passing raw bytes on."""

    def __init__(self, conn: Hijacked) -> None:
        self._conn = conn

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._conn._received(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self._conn._received(None)


class _HalfCloseProtocol(asyncio.Protocol):
    """Delegates to aiohttp's protocol, except that EOF from the client keeps the connection open."""

    def __init__(self, inner: asyncio.Protocol, conn: Hijacked) -> None:
        self._inner = inner
        self._conn = conn

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool:
        self._conn._received(None)
        return True

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._received(None)
        self._conn.lost.set()
        self._inner.connection_lost(exc)


class Hijacked:
    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.request = request
        self.response = response
        self.lost = asyncio.Event()  # the connection is gone both ways
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._buffered = 0
        self._paused = False
        self._eof = False
        self._client_done = asyncio.Event()  # the client closed its sending side, or went
        self._draining = False

    def _received(self, data: bytes | None) -> None:
        if data is None:
            self._client_done.set()
            if not self._eof:
                self._eof = True
                self._chunks.put_nowait(None)
            return
        if self._eof or not data or self._draining:
            return
        self._chunks.put_nowait(data)
        self._buffered += len(data)
        transport = self.request.transport
        if self._buffered > _STDIN_HIGH_WATER and not self._paused and transport is not None:
            transport.pause_reading()
            self._paused = True

    async def read(self) -> bytes | None:
        """The client's next bytes; None once it has closed its sending side (or gone)."""
        data = await self._chunks.get()
        if data is None:
            self._chunks.put_nowait(None)
            return None
        self._buffered -= len(data)
        transport = self.request.transport
        if self._paused and self._buffered <= _STDIN_HIGH_WATER // 2 and transport is not None:
            transport.resume_reading()
            self._paused = False
        return data

    async def write(self, data: bytes) -> None:
        """Raises ConnectionResetError once the client is gone."""
        await self.response.write(data)

    async def end(self) -> None:
        """The output is over: say so with a half-close, then read and drop what stdin the client still sends
        until it closes too (or `_LINGER` passes). Closing with stdin unread would reset the connection, and a
        reset can cost the client output it has not read yet (`seq 1000000 | docker run -i IMG head -3`)."""
        transport = self.request.transport
        if (self.response.status != 101 or transport is None or transport.is_closing() or self.lost.is_set()
                or not transport.can_write_eof()):
            return  # a 200's body is ended by aiohttp itself
        self._draining = True
        while not self._chunks.empty():
            self._chunks.get_nowait()
        self._buffered = 0
        if self._paused:
            transport.resume_reading()
            self._paused = False
        transport.write_eof()
        try:
            await asyncio.wait_for(self._client_done.wait(), _LINGER)
        except TimeoutError:
            pass


async def hijack(request: web.Request, *, multiplexed: bool) -> Hijacked:
    """Answer `101 UPGRADED` (a 200 to a client that did not ask to upgrade) and take the connection over; the
    handler must return `.response`.

    `multiplexed` (output in stdcopy frames) shows in the Content-Type from API 1.42 on, as dockerd says it.
    """
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("client gone before the upgrade")
    content_type = MULTIPLEXED_STREAM if multiplexed and versions.of(request) >= (1, 42) else RAW_STREAM
    if request.headers.get("Upgrade"):
        response = web.StreamResponse(status=101, reason="UPGRADED", headers={
            "Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
    else:
        # A client that did not ask to upgrade (plain HTTP libraries) gets the stream as a 200's body, as dockerd
        # answers it (aiohttp frames it in chunks, which such clients read as they read any other body).
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
    conn = Hijacked(request, response)
    # Both installed before the 101 leaves: the CLI may half-close the moment it reads it.
    request.protocol.set_parser(_RawParser(conn))  # type: ignore[arg-type]
    transport.set_protocol(_HalfCloseProtocol(request.protocol, conn))
    # aiohttp closes the connection when the handler returns (after `Hijacked.end`).
    response.force_close()
    await response.prepare(request)
    return conn

