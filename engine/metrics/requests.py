"""API request latency, by method, route template and status.

The route is aiohttp's canonical path of the matched resource (`/containers/{id}/json`), with the
`/v{api_version}` prefix taken off, so a thousand containers or API versions make no new series;
a request that matched no route is `unmatched`. Streams (attach, logs --follow, events) count
until they end, so their durations say how long clients stayed, not how fast the engine answered.
"""
from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from engine.metrics.tally import Histograms

_VERSIONED = "/v{api_version}"
# A client that hung up before the answer was written (nginx's code for it; no HTTP status was sent).
CLIENT_CLOSED = "499"
# Any other token is a valid HTTP method too: a client must not be able to make series at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    path = resource.canonical
    return path[len(_VERSIONED):] if path.startswith(_VERSIONED + "/") else path


class RequestMetrics:
    def __init__(self) -> None:
        self.seconds = Histograms("pyengine_http_request_duration_seconds",
                                  "Docker API requests: time from the request to the end of the answer.",
                                  ("method", "route", "status"))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        status = CLIENT_CLOSED
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        except web.HTTPException as e:
            status = str(e.status)
            raise
        except (ConnectionResetError, BrokenPipeError, asyncio.CancelledError):
            raise
        except Exception:
            status = "500"
            raise
        finally:
            method = request.method if request.method in _METHODS else "other"
            self.seconds.observe((method, route_template(request), status), time.monotonic() - started)
