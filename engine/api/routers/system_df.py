"""docker system df: what images, containers and volumes take on disk; build cache prune for system prune."""
from __future__ import annotations

from aiohttp import web

from engine.api import versions
from engine.api.app import Router
from engine.api.responses import json_response
from engine.backend import Backend


def register(r: Router, b: Backend) -> None:
    async def df(request: web.Request) -> web.Response:
        return json_response(versions.system_df(await b.disk.df(), versions.of(request)))

    async def build_prune(_: web.Request) -> web.Response:
        # No builder, so no build cache: `docker system prune` asks anyway.
        return json_response({"CachesDeleted": [], "SpaceReclaimed": 0})

    r.add("GET", "/system/df", df)
    r.add("POST", "/build/prune", build_prune)
