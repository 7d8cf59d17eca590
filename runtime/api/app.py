"""The runtime's HTTP API: versioned under /v1, OpenAPI at /openapi.json."""
from __future__ import annotations

from fastapi import FastAPI

from runtime import __version__
from runtime.api import errors
from runtime.api.context import ContextMiddleware
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
from runtime.metrics.service import RuntimeMetrics
from runtime.services import Services
from runtime.wire import API_PREFIX


def build(services: Services) -> FastAPI:
    app = FastAPI(title="pyruntimed", version=__version__, description="pyengine runtime API",
                  docs_url=None, redoc_url=None)
    app.state.services = services
    errors.install(app)
    for r in (system, namespaces, ingests, blobs, content, diff, archives, images, push, registry, leases, snapshots,
              containers, container_fs, tasks, events):
        app.include_router(r.router, prefix=API_PREFIX)
    app.add_middleware(ContextMiddleware)
    RuntimeMetrics(services).install(app)
    return app
