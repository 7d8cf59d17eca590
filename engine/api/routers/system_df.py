"""docker system df: what images, containers, volumes and the build cache take on disk."""
from __future__ import annotations

from aiohttp import web

from engine.api import versions
from engine.api.app import Router
from engine.api.responses import json_response
from engine.backend import Backend


def register(r: Router, b: Backend) -> None:
    async def df(request: web.Request) -> web.Response:
        return json_response(versions.system_df(await b.disk.df(), versions.of(request)))

    r.add("GET", "/system/df", df)
