"""Middleware: the request's SERVER span, when tracing is configured (runtime/telemetry.py).

A `traceparent` the caller sends (the engine's client span, runtime.client.tracing) is continued, so
the runtime's handling and its runc/conmon steps sit in the engine's trace. The span is named by the
route template (`POST /v1/tasks/{task_id}/start`): span names never carry ids. Unconfigured, the
request is only passed on.
"""
from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from runtime import telemetry

_tracer = trace.get_tracer("runtime.api")


def route_template(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not telemetry.enabled():
        return await handler(request)
    route = route_template(request)
    attributes = {"http.request.method": request.method, "url.path": request.path}
    if route is not None:
        attributes["http.route"] = route
    with _tracer.start_as_current_span(f"{request.method} {route or 'unmatched'}", kind=SpanKind.SERVER,
                                       context=propagate.extract(dict(request.headers)),
                                       attributes=attributes) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response
