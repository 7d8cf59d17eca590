"""Response helpers: Docker clients compare Content-Type exactly (CLIENT-FLOWS §3)."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from engine.api.gojson import decode


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode() + b"\n", status=status,
                        headers={"Content-Type": "application/json"})


def error_response(message: str, status: int) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response({"message": message}, status)


def empty(status: int = 204) -> web.Response:
    return web.Response(status=status)


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The body's JSON value; a malformed one fails in the words of dockerd's Go decoder (gojson)."""
    raw = await request.read()
    if optional and not raw.strip():
        return None
    return decode(raw)
