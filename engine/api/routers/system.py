"""_ping, version, info."""
from __future__ import annotations

from aiohttp import web

from engine.api import versions
from engine.api.app import API_VERSION, MIN_API_VERSION, Router
from engine.api.responses import json_response
from engine.backend import Backend

_PING_HEADERS = {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Builder-Version": "1",
    # Unversioned since API 1.42: tells a client about swarm mode without a call to /info.
    "Swarm": "inactive",
}


def register(r: Router, b: Backend) -> None:
    async def ping(request: web.Request) -> web.Response:
        if request.method == "HEAD":
            return web.Response(status=200, headers={**_PING_HEADERS, "Content-Length": "0"})
        return web.Response(status=200, body=b"OK", headers=_PING_HEADERS)

    async def version(_: web.Request) -> web.Response:
        return json_response(await b.system.version(API_VERSION, MIN_API_VERSION))

    async def info(request: web.Request) -> web.Response:
        return json_response(versions.info(await b.system.info(), versions.of(request)))

    r.add("GET", "/_ping", ping)
    r.add("HEAD", "/_ping", ping)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)

