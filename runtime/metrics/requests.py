"""Runtime API request latency, by method, route template and status (an ASGI middleware).

The route is the template of the FastAPI route that served the request (`/v1/tasks/{task_id}`),
which the router leaves in the request's scope; a request no route matched is `unmatched`.
Streams (events, pull progress, logs) count until their last byte.
"""
from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from prometheus_client import CollectorRegistry, Histogram

from runtime.wire import API_PREFIX

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

# A client that hung up before the answer started (nginx's code for it; no HTTP status was sent).
CLIENT_CLOSED = "499"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def route_template(scope: Scope) -> str:
    template = getattr(scope.get("route"), "path_format", None)  # `{key:path}` written as `{key}`
    if not isinstance(template, str):
        return "unmatched"
    # FastAPI 0.16x leaves the included router's own route in the scope, without the prefix it was included
    # under; older ones copied routes with the prefix in their path.
    if scope["path"].startswith(API_PREFIX + "/") and not template.startswith(API_PREFIX + "/"):
        template = API_PREFIX + template
    return template


def histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("pyruntimed_http_request_duration_seconds",
                     "Runtime API requests: time from the request to the end of the answer.",
                     ["method", "route", "status"], registry=registry)


class TimingMiddleware:
    def __init__(self, app: ASGIApp, seconds: Histogram) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = CLIENT_CLOSED

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if status == CLIENT_CLOSED:
                status = "500"  # Starlette's outermost handler answers it
            raise
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.seconds.labels(method, route_template(scope), status).observe(time.monotonic() - started)
