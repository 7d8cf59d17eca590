"""A websocket as an attached client (`GET /containers/{id}/attach/ws`), for the stdio bridge.

As dockerd does: every message the client sends, text or binary, is stdin bytes; output goes
out raw (never stdcopy-framed: a websocket has no second channel for stderr) in binary
messages from API 1.28 on, in text messages before. The client's close ends its stdin and
the attach.
"""
from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

_STDIN_QUEUE = 256  # messages buffered from the client before reading from it pauses


class WebSocketClient:
    def __init__(self, ws: web.WebSocketResponse, *, binary: bool, stdin: bool) -> None:
        self._ws = ws
        self._stdin = stdin  # without it, messages are dropped: the close that ends the attach stays readable
        self._opcode = WSMsgType.BINARY if binary else WSMsgType.TEXT
        self.lost = asyncio.Event()
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue(_STDIN_QUEUE)
        self._reader = asyncio.ensure_future(self._receive())

    async def _receive(self) -> None:
        try:
            async for msg in self._ws:
                if not self._stdin:
                    continue
                if msg.type == WSMsgType.BINARY:
                    await self._chunks.put(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await self._chunks.put(msg.data.encode())
        finally:
            self.lost.set()
            with contextlib.suppress(asyncio.QueueFull):
                self._chunks.put_nowait(None)

    async def read(self) -> bytes | None:
        if self.lost.is_set() and self._chunks.empty():
            return None
        data = await self._chunks.get()
        if data is None:
            self._chunks.put_nowait(None)
        return data

    async def write(self, data: bytes) -> None:
        if self._ws.closed:
            raise ConnectionResetError("the websocket is closed")
        await self._ws.send_frame(data, self._opcode)

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._ws.close()
