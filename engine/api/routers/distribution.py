"""GET /distribution/{name}/json: a name's descriptor and platforms in its registry (docker buildx, swarm)."""
from __future__ import annotations

from aiohttp import web

from engine.api.app import Router
from engine.api.responses import json_response
from engine.backend import Backend
from engine.images import distribution
from engine.images.pull import RegistryAuth


def register(r: Router, b: Backend) -> None:
    async def inspect(request: web.Request) -> web.Response:
        auth = RegistryAuth.from_header(request.headers.get("X-Registry-Auth"))
        return json_response(await distribution.inspect(b.runtime, b.images.registries, request.match_info["name"],
                                                        auth))

    # Names contain '/' and ':' (127.0.0.1:5000/library/busybox:latest): match them greedily.
    r.add("GET", "/distribution/{name:.+}/json", inspect)
