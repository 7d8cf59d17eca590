"""Response helpers: Docker clients compare Content-Type exactly (CLIENT-FLOWS §3)."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web


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
    from engine.errors import InvalidArgument

    raw = await request.read()
    if not raw.strip():
        if optional:
            return None
        raise InvalidArgument("request body is empty: a JSON object is required")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid JSON: {e}") from None
