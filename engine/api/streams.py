"""Docker's stream formats: 8-byte-header multiplexing, and streamed responses (CLIENT-FLOWS §1.10, §4)."""
from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar

from aiohttp import web

from engine.errors import EngineError
from runtime.client import RuntimeError_

log = logging.getLogger("engine.api.streams")

STDOUT = 1
STDERR = 2

_HEADER = struct.Struct(">BxxxI")

T = TypeVar("T")


def frame(stream: int, data: bytes) -> bytes:
    """One "stdcopy" frame: [stream, 0, 0, 0, size (uint32 BE)] + payload."""
    return _HEADER.pack(stream, len(data)) + data


async def open_stream(request: web.Request, content_type: str | None = "application/json") -> web.StreamResponse:
    """A 200 whose headers leave at once: clients block until they see them (`docker run`'s wait).

    Without a length aiohttp chunks the body for HTTP/1.1 and ends it by closing for HTTP/1.0 (what a proxy such
    as nginx speaks upstream by default), as dockerd does."""
    resp = web.StreamResponse(status=200)
    if content_type:
        resp.content_type = content_type
    await resp.prepare(request)
    return resp


async def disconnected(request: web.Request, interval: float = 0.5) -> None:
    """Returns once the client has gone (handlers are not cancelled when it hangs up)."""
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(interval)


async def until(main: Awaitable[T], *stoppers: Awaitable[object]) -> T | None:
    """`main`'s result, or None if a stopper finishes first (then `main` is cancelled)."""
    task = asyncio.ensure_future(main)
    others = [asyncio.ensure_future(s) for s in stoppers]
    try:
        await asyncio.wait([task, *others], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in others:
            t.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, *others, return_exceptions=True)
    if task.cancelled():
        return None
    return task.result()


def json_line(message: dict[str, Any]) -> bytes:
    """One message of a JSON progress stream (pull, push, build, load, import), as dockerd writes them."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\r\n"


def error_line(message: str) -> bytes:
    return json_line({"errorDetail": {"message": message}, "error": message})


async def progress_response(request: web.Request, messages: AsyncGenerator[dict[str, Any], None],
                            what: str) -> web.StreamResponse:
    """A JSON progress stream: a failure before the first message is still an ordinary status (a 404 for an
    unknown image), a later one the stream's last message. A client that hangs up stops the work now."""
    try:
        first = await anext(messages)
        response = await open_stream(request)
        await response.write(json_line(first))
        try:
            async for message in messages:
                await response.write(json_line(message))
        except (EngineError, RuntimeError_) as e:
            log.info("%s failed: %s", what, e.message)
            await response.write(error_line(e.message))
        except ConnectionError:
            log.info("%s: the client went away; stopping", what)
            return response
        await response.write_eof()
        return response
    finally:
        await messages.aclose()
