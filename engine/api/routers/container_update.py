"""POST /containers/{id}/update: docker update (resource limits and restart policy)."""
from __future__ import annotations

from aiohttp import web

from engine.api import versions
from engine.api.app import Router
from engine.api.responses import json_response, read_json
from engine.backend import Backend
from engine.containers.execs import parse_model
from engine.containers.resources import UpdateRequest


def register(r: Router, b: Backend) -> None:
    async def update(request: web.Request) -> web.Response:
        body = await read_json(request)
        if isinstance(body, dict):
            body = versions.update_body(body, versions.of(request))
        req = parse_model(UpdateRequest, body)
        warnings = await b.manager.update(request.match_info["id"], req)
        return json_response({"Warnings": warnings or None})  # Go's nil slice: null, as dockerd answers

    r.add("POST", "/containers/{id}/update", update)
