"""Runtime API request latency, by method, route template and status (an aiohttp middleware).

The route is aiohttp's canonical path of the resource that served the request (`/v1/tasks/{task_id}`,
`{key:path}` routes as `{key}`); a request no route matched is `unmatched`. Streams (events, pull
progress, tars) count until their last byte.
"""
from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Histogram

from runtime.api.errors import StreamBroken

# A client that hung up before the answer started (nginx's code for it; no HTTP status was sent).
CLIENT_CLOSED = "499"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("pyruntimed_http_request_duration_seconds",
                     "Runtime API requests: time from the request to the end of the answer.",
                     ["method", "route", "status"], registry=registry)


def timing(seconds: Histogram) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        status = CLIENT_CLOSED
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        except web.HTTPException as e:
            status = str(e.status)
            raise
        except StreamBroken:
            status = "200"  # cut short after its status went out
            raise
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            status = "500"
            raise
        finally:
            method = request.method if request.method in _METHODS else "other"
            seconds.labels(method, route_template(request), status).observe(time.monotonic() - started)

    return middleware
