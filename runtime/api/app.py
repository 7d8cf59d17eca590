"""The runtime's HTTP API on aiohttp.web: versioned under /v1, OpenAPI at /openapi.json."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from runtime import __version__
from runtime.api import context, errors, openapi, tracing
from runtime.api.routers import (
    archives,
    blobs,
    container_fs,
    containers,
    content,
    diff,
    events,
    images,
    ingests,
    leases,
    namespaces,
    push,
    registry,
    snapshots,
    system,
    tasks,
)
from runtime.api.routing import SERVICES, STREAMS, Route, cut_streams_after, handler
from runtime.metrics.service import RuntimeMetrics
from runtime.services import Services
from runtime.wire import API_PREFIX

# JSON bodies are read whole (uploads stream and are not bound by this): room for a blob stored in one
# request (4 MiB, base64) and the builder's path lists, and a bound all the same.
MAX_JSON_BODY = 64 << 20
# In-flight requests get this long to finish at a stop; streams still open then (events) are cut.
GRACEFUL_STOP = 5.0


@dataclass
class Api:
    app: web.Application
    routes: list[Route]
    _document: dict[str, Any] | None = field(default=None, repr=False)

    def openapi(self) -> dict[str, Any]:
        if self._document is None:
            self._document = openapi.document(self.routes, "pyruntimed", __version__, "pyengine runtime API")
        return self._document


def build(services: Services | None) -> Api:
    """The application; `services` may be None where only the routes are read (the OpenAPI document)."""
    metrics = RuntimeMetrics(services)
    app = web.Application(client_max_size=MAX_JSON_BODY,
                          middlewares=[metrics.timing, tracing.middleware, context.middleware, errors.middleware])
    if services is not None:
        app[SERVICES] = services
    app[STREAMS] = set()
    app.on_shutdown.append(cut_streams_after(GRACEFUL_STOP))
    routes = [route for r in (system, namespaces, ingests, blobs, content, diff, archives, images, push, registry,
                              leases, snapshots, containers, container_fs, tasks, events)
              for route in r.router.declared(API_PREFIX)]
    for route in routes:
        if route.method == "GET":  # HEAD too, as Starlette's routes had it
            app.router.add_get(route.pattern, handler(route))
        else:
            app.router.add_route(route.method, route.pattern, handler(route))
    api = Api(app, routes)

    async def document(_: web.Request) -> web.Response:
        return web.json_response(api.openapi())

    app.router.add_get("/openapi.json", document)
    metrics.install(app)
    return api
