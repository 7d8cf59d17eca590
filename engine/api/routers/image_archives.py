"""docker save and docker load: GET /images/{name}/get, GET /images/get?names=…, POST /images/load.

Saves stream the runtime's tar through as it comes. A load answers as dockerd does: 200 with
`application/json` and a JSON message stream (`{"stream": "Loaded image: …"}`), a bad archive
being an `errorDetail` message in that stream, never a bare status.
"""
from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from engine.api.app import Router
from engine.api.streams import json_line
from engine.api.query import boolean
from engine.api.routers.archive import _stream
from engine.backend import Backend
from engine.errors import EngineError, InvalidArgument
from engine.images import platforms
from runtime.client import RuntimeError_

log = logging.getLogger("engine.api.image_archives")



def _platform(raw: str | None) -> str | None:
    """API 1.48+'s `platform`: a JSON-encoded OCI platform (the CLI's `--platform`)."""
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidArgument(f"failed to parse platform: invalid JSON: {raw}") from None
    if not isinstance(doc, dict) or not doc.get("os") or not doc.get("architecture"):
        raise InvalidArgument(f"failed to parse platform: {raw}: os and architecture are required")
    spec = f"{doc['os']}/{doc['architecture']}" + (f"/{doc['variant']}" if doc.get("variant") else "")
    return str(platforms.parse(spec))


def register(r: Router, b: Backend) -> None:
    archives = b.archives

    async def save(request: web.Request, names: list[str]) -> web.StreamResponse:
        async with archives.save(names, _platform(request.query.get("platform"))) as chunks:
            return await _stream(request, chunks)

    async def get_one(request: web.Request) -> web.StreamResponse:
        return await save(request, [request.match_info["name"]])

    async def get_many(request: web.Request) -> web.StreamResponse:
        return await save(request, request.query.getall("names", []))

    async def load(request: web.Request) -> web.StreamResponse:
        async def body() -> AsyncIterator[bytes]:
            async for chunk in request.content.iter_chunked(1 << 20):
                yield chunk

        # dockerd's default when the client says nothing (the SDK) is quiet.
        quiet = boolean(request.query, "quiet", True)
        platform = _platform(request.query.get("platform"))
        try:
            messages = await archives.load(body(), quiet, platform)
        except (EngineError, RuntimeError_) as e:
            log.info("load failed: %s", e.message)
            # Read what the client still sends, so it gets the answer instead of a broken pipe.
            async for _ in body():
                pass
            messages = [{"errorDetail": {"message": e.message}, "error": e.message}]
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for message in messages:
            await response.write(json_line(message))
        await response.write_eof()
        return response

    r.add("GET", "/images/get", get_many)
    r.add("POST", "/images/load", load)
    # Names contain '/' and ':' (127.0.0.1:5000/library/busybox:latest): match them greedily.
    r.add("GET", "/images/{name:.+}/get", get_one)
