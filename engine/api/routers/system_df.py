"""docker system df: what images, containers, volumes and the build cache take on disk."""
from __future__ import annotations

from aiohttp import web

from engine.api import versions
from engine.api.app import Router
from engine.api.responses import json_response
from engine.backend import Backend
from engine.errors import InvalidArgument


# The objects `type` (API 1.42+, repeatable) may ask for, and the parts of the answer each fills.
_TYPES = {"image": ("Images", "LayersSize"), "container": ("Containers",), "volume": ("Volumes",),
          "build-cache": ("BuildCache", "BuilderSize")}


def register(r: Router, b: Backend) -> None:
    async def df(request: web.Request) -> web.Response:
        asked = request.query.getall("type", [])
        if unknown := [t for t in asked if t not in _TYPES]:
            raise InvalidArgument(f"unknown object type: {unknown[0]}")
        doc = await b.disk.df()
        if asked:
            # What was not asked for is left empty, as dockerd leaves it (null lists, zero sizes).
            kept = {key for t in asked for key in _TYPES[t]}
            doc = {key: value if key in kept else (0 if isinstance(value, int) else None) for key, value in doc.items()}
        return json_response(versions.system_df(doc, versions.of(request)))

    r.add("GET", "/system/df", df)
