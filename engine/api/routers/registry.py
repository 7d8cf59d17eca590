"""What registries answer, read without pulling: GET /distribution/{name}/json (docker buildx, swarm) and
GET /images/search (docker search)."""
from __future__ import annotations

from aiohttp import web

from engine.api.app import Router
from engine.api.query import filters
from engine.api.responses import json_response
from engine.backend import Backend
from engine.images import distribution, search
from engine.images.pull import RegistryAuth


def register(r: Router, b: Backend) -> None:
    async def inspect(request: web.Request) -> web.Response:
        auth = RegistryAuth.from_header(request.headers.get("X-Registry-Auth"))
        return json_response(await distribution.inspect(b.runtime, b.images.registries, request.match_info["name"],
                                                        auth))

    async def search_images(request: web.Request) -> web.Response:
        q = request.query
        wanted = search.SearchFilter.parse(filters(q))
        auth = RegistryAuth.from_header(request.headers.get("X-Registry-Auth"))
        return json_response(await search.search(b.runtime, b.images.registries, q.get("term", ""),
                                                 search.limit_of(q.get("limit")), wanted, auth))

    # Names contain '/' and ':' (127.0.0.1:5000/library/busybox:latest): match them greedily.
    r.add("GET", "/distribution/{name:.+}/json", inspect)
    r.add("GET", "/images/search", search_images)
