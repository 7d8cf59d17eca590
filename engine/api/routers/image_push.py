"""POST /images/{name}/push (docker push) and POST /auth (docker login)."""
from __future__ import annotations

import logging

from aiohttp import web

from engine.api.app import Router
from engine.api.streams import progress_response
from engine.api.responses import json_response, read_json
from engine.backend import Backend
from engine.errors import InvalidArgument
from engine.images.auth import AuthConfig
from engine.images.pull import RegistryAuth

log = logging.getLogger("engine.api.push")



def register(r: Router, b: Backend) -> None:
    async def push(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        messages = b.metrics.transfers.push(b.pusher.push(
            name, request.query.get("tag", ""), request.query.get("platform", ""),
            RegistryAuth.from_header(request.headers.get("X-Registry-Auth")), b.images.registries.insecure))
        return await progress_response(request, messages, f"push of {name}")

    async def auth(request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise InvalidArgument("json: cannot unmarshal into Go value of type registry.AuthConfig")
        return json_response(await b.logins.login(AuthConfig.model_validate(body)))

    r.add("POST", "/images/{name:.+}/push", push)
    r.add("POST", "/auth", auth)
