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

from engine.api.streams import STDERR, STDOUT, frame
from runtime import client as rt
from runtime.client.attach import Attachment

RAW_STREAM = "application/vnd.docker.raw-stream"
# Stdin buffered from the client beyond this pauses reading from it until the process catches up.
_STDIN_HIGH_WATER = 1 << 20
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


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

    def _received(self, data: bytes | None) -> None:
        if data is None:
            if not self._eof:
                self._eof = True
                self._chunks.put_nowait(None)
            return
        if self._eof or not data:
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


async def hijack(request: web.Request) -> Hijacked:
    """Answer `101 UPGRADED` and take the connection over; the handler must return `.response`."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("client gone before the upgrade")
    response = web.StreamResponse(status=101, reason="UPGRADED", headers={
        "Content-Type": RAW_STREAM, "Connection": "Upgrade", "Upgrade": "tcp"})
    conn = Hijacked(request, response)
    # Both installed before the 101 leaves: the CLI may half-close the moment it reads it.
    request.protocol.set_parser(_RawParser(conn))  # type: ignore[arg-type]
    transport.set_protocol(_HalfCloseProtocol(request.protocol, conn))
    # aiohttp closes the connection when the handler returns: that is how the stream ends.
    response.force_close()
    await response.prepare(request)
    return conn


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's detach-key syntax: comma-separated "ctrl-<x>" or single characters."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if key.lower().startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c])
            else:
                raise ValueError(f"invalid detach key {key!r}")
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise ValueError(f"invalid detach key {key!r}")
    return bytes(out)


class _DetachScanner:
    """Finds the detach sequence in stdin; bytes that may start it are held until it is decided."""

    def __init__(self, keys: bytes) -> None:
        self._keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detach requested)."""
        buf = self._held + data
        self._held = b""
        i = buf.find(self._keys)
        if i >= 0:
            return buf[:i], True
        for n in range(min(len(self._keys) - 1, len(buf)), 0, -1):
            if buf.endswith(self._keys[:n]):
                self._held = buf[-n:]
                return buf[:-n], False
        return buf, False


async def bridge(conn: Hijacked, att: Attachment, *, tty: bool, stdin: bool, stdout: bool, stderr: bool,
                 close_stdin: bool, detach_keys: bytes | None) -> bool:
    """Pump a process's output to the client and the client's bytes to its stdin, until the output ends.

    Returns True if it ended because the output did (the process exited); False if the client
    went away or, on a terminal, typed the detach keys. Client EOF only closes the process's
    stdin, and only with `close_stdin`.
    """
    wanted = {STDOUT: stdout, STDERR: stderr}

    async def output() -> None:
        while (chunk := await att.read()) is not None:
            stream, data = chunk
            if wanted.get(stream):
                await conn.write(data if tty else frame(stream, data))

    async def input_() -> None:
        scanner = _DetachScanner(detach_keys) if tty and detach_keys else None
        try:
            while (data := await conn.read()) is not None:
                detached = False
                if scanner is not None:
                    data, detached = scanner.feed(data)
                if data:
                    await att.write(data)
                if detached:
                    return
            if close_stdin:
                att.close_stdin()
        except rt.FailedPrecondition:
            pass  # the process closed its stdin: it may still be writing
        await asyncio.Event().wait()  # stdin is over; the output decides the end

    out = asyncio.ensure_future(output())
    tasks = [out, asyncio.ensure_future(conn.lost.wait())]
    if stdin:
        tasks.append(asyncio.ensure_future(input_()))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        att.close()
    return out.done() and not out.cancelled() and out.exception() is None
