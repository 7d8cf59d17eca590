"""aiohttp middleware: one trace per Docker API request, when tracing is configured.

The request's SERVER span is current while its handler runs, so every runtime API call it makes is a
child span whose context travels to pyruntimed in a `traceparent` header (runtime.client.tracing): one
trace shows the engine's handling, the runtime's, and its runc/conmon steps. A `traceparent` the client
sends is continued. Unconfigured, the middleware only passes the request on.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from runtime.client.tracing import enabled

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_tracer = trace.get_tracer("engine.api")


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not enabled():
        return await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    with _tracer.start_as_current_span(
            f"pyengined {request.method} {route}", context=propagate.extract(dict(request.headers)),
            kind=SpanKind.SERVER, attributes={"http.request.method": request.method, "http.route": route,
                                              "url.path": request.path}) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response
