"""ASGI middleware: a SERVER span per runtime API request, continuing the caller's W3C trace context.

A request with a `traceparent` (the engine's client sends one from inside a traced Docker API call)
continues that trace; one without starts its own only when tracing is configured. The span lasts until
the response's last byte (streams included) and is named after the route's template, not its ids.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from runtime import telemetry

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]

_tracer = trace.get_tracer("runtime.api")


class TracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not telemetry.enabled():
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        method, path = scope.get("method", ""), scope.get("path", "")
        with _tracer.start_as_current_span(f"pyruntimed {method}", context=propagate.extract(carrier),
                                           kind=SpanKind.SERVER,
                                           attributes={"http.request.method": method, "url.path": path}) as span:
            status = 0

            async def send_status(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"pyruntimed {method} {route}")
                    span.set_attribute("http.route", route)
                if status:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
