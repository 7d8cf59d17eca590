"""POST /images/{name}/push (docker push) and POST /auth (docker login)."""
from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from engine.api.app import Router
from engine.api.responses import json_response, read_json
from engine.backend import Backend
from engine.errors import EngineError, InvalidArgument
from engine.images.auth import AuthConfig
from engine.images.pull import RegistryAuth
from runtime.client import RuntimeError_

log = logging.getLogger("engine.api.push")


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\r\n"


def register(r: Router, b: Backend) -> None:
    async def push(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        messages = b.pusher.push(name, request.query.get("tag", ""), request.query.get("platform", ""),
                                 RegistryAuth.from_header(request.headers.get("X-Registry-Auth")),
                                 b.images.registries.insecure)
        try:
            # An image that is not here is still an ordinary 404; later failures are messages.
            first = await anext(messages)
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(_line(first))
            try:
                async for message in messages:
                    await response.write(_line(message))
            except (EngineError, RuntimeError_) as e:
                log.info("push of %s failed: %s", name, e.message)
                await response.write(_line({"errorDetail": {"message": e.message}, "error": e.message}))
            await response.write_eof()
            return response
        finally:
            # A client hanging up stops the runtime's push now.
            await messages.aclose()

    async def auth(request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise InvalidArgument("json: cannot unmarshal into Go value of type registry.AuthConfig")
        return json_response(await b.logins.login(AuthConfig.model_validate(body)))

    r.add("POST", "/images/{name:.+}/push", push)
    r.add("POST", "/auth", auth)
