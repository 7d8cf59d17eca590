"""The Docker Engine API server (aiohttp): routing with and without /v1.NN, headers, errors."""
from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Sequence
from typing import Any, Awaitable, Callable

from aiohttp import web
from yarl import URL

from engine import __version__
from engine.api import tracing, versions
from engine.api.responses import error_response
from engine.errors import EngineError
from runtime import client as rt
from runtime.client import RuntimeError_

log = logging.getLogger("engine.api")

API_VERSION = versions.text(versions.NEWEST)
MIN_API_VERSION = versions.text(versions.OLDEST)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The one mapping of runtime errors to Docker statuses for this API.
_RUNTIME_STATUS: dict[type[RuntimeError_], int] = {
    rt.NotFound: 404, rt.AlreadyExists: 409, rt.Conflict: 409, rt.InvalidArgument: 400,
    rt.FailedPrecondition: 409, rt.Unauthenticated: 401, rt.PermissionDenied: 403,
    rt.Unavailable: 503, rt.DataLoss: 500, rt.Internal: 500,
}


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if ("//" in path or "/." in path) and (cleaned := _clean(path)) != path:
        # Go's router answers a path to be cleaned with a redirect, whatever it names: docker-py asks for
        # `/containers//name/json` when given the `/name` that `Names` lists, and follows it.
        query = f"?{request.rel_url.raw_query_string}" if request.rel_url.raw_query_string else ""
        return web.Response(status=301, headers={"Location": URL.build(path=cleaned).raw_path + query})
    try:
        return await handler(request)
    except EngineError as e:
        return error_response(e.message, e.status)
    except RuntimeError_ as e:
        return error_response(e.message, _RUNTIME_STATUS.get(type(e), 500))
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):  # OPTIONS takes any path: other methods are "not allowed"
        return error_response("page not found", 404)
    except web.HTTPException as e:
        return error_response(e.text or e.reason, e.status)
    except (ConnectionResetError, BrokenPipeError):
        # Clients hang up mid-stream routinely (Ctrl-C, run -d dropping its wait).
        raise
    except Exception as e:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(f"internal error: {type(e).__name__}: {e}", 500)


def _clean(path: str) -> str:
    """Go's path.Clean, as its router applies it: one slash for many, no `.` or `..`, a trailing slash kept."""
    out = posixpath.normpath("/" + re.sub("/+", "/", path).lstrip("/"))
    return out + "/" if path.endswith("/") and out != "/" else out


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Api-Version", API_VERSION)
    response.headers.setdefault("Ostype", "linux")
    response.headers.setdefault("Docker-Experimental", "true" if request.app["experimental"] else "false")
    response.headers["Server"] = f"Docker/{__version__} (linux)"


class Router:
    """Registers each route with and without the /v1.NN prefix; checks the version asked for."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def add(self, method: str, path: str, handler: Handler) -> None:
        async def versioned(request: web.Request) -> web.StreamResponse:
            asked = request.match_info.get("api_version")
            if asked is not None:
                v = versions.parse(asked)
                refusal = versions.check(v)
                if refusal is not None:
                    return error_response(refusal, 400)
                versions.remember(request, v)
            return await handler(request)

        self.app.router.add_route(method, path, versioned)
        self.app.router.add_route(method, r"/v{api_version:\d+\.\d+}" + path, versioned)


def build(backend: Any, routers: Sequence[Callable[[Router, Any], None]], *,
          experimental: bool = False) -> web.Application:
    app = web.Application(middlewares=[tracing.middleware, _errors], client_max_size=1 << 30)
    app["backend"] = backend
    app["experimental"] = experimental
    app.on_response_prepare.append(_headers)
    r = Router(app)
    for register in routers:
        register(r, backend)
    # dockerd answers any OPTIONS (a browser's preflight) with an empty 200, whatever the path.
    app.router.add_route("OPTIONS", "/{path:.*}", _options)
    return app


async def _options(_: web.Request) -> web.Response:
    return web.Response(status=200)
