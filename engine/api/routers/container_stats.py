"""docker stats and container prune: cgroup metrics as Docker's stats JSON, cleanup of stopped containers."""
from __future__ import annotations

import contextlib
import json

from aiohttp import web

from engine import prune_guard
from engine.api.app import Router
from engine.api.query import boolean, filters
from engine.api.responses import json_response
from engine.api.streams import open_stream
from engine.backend import Backend
from engine.errors import NotFound


def register(r: Router, b: Backend) -> None:
    async def stats(request: web.Request) -> web.StreamResponse:
        c = b.containers.get(request.match_info["id"])
        one_shot = boolean(request.query, "one-shot")
        if not boolean(request.query, "stream", True) or one_shot:
            return json_response(await b.stats.once(c, one_shot))
        resp = await open_stream(request)
        async with contextlib.aclosing(b.stats.stream(c)) as samples:
            # The container removed meanwhile ends the stream, as dockerd ends it (an error cannot follow a 200).
            with contextlib.suppress(NotFound):
                async for sample in samples:
                    try:
                        await resp.write(json.dumps(sample).encode() + b"\n")
                    except (ConnectionResetError, RuntimeError):
                        break
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await resp.write_eof()
        return resp

    async def prune(request: web.Request) -> web.Response:
        with b.prunes.running(prune_guard.CONTAINERS):
            report = await b.pruner.prune(filters(request.query))
        b.events.publish("container", "prune", "", {"reclaimed": str(report["SpaceReclaimed"])})
        return json_response(report)

    r.add("GET", "/containers/{id}/stats", stats)
    r.add("POST", "/containers/prune", prune)
