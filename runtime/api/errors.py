"""The one place runtime errors become HTTP statuses (the client maps them back)."""
from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from runtime import errors, nospace

log = logging.getLogger("runtime.api")

STATUS: dict[type[errors.RuntimeError_], int] = {
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.InvalidArgument: 400,
    errors.FailedPrecondition: 412,
    errors.Conflict: 409,
    errors.Unavailable: 503,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    # Content that failed verification is the source's fault, not the daemon's.
    errors.DataLoss: 422,
    errors.Internal: 500,
}

_HTTP_CODES = {400: errors.InvalidArgument, 404: errors.NotFound, 405: errors.InvalidArgument,
               409: errors.Conflict, 415: errors.InvalidArgument}


class StreamBroken(Exception):
    """A streamed answer failed after its status went out: the connection is cut, nothing else can be said."""


def error_body(err: errors.RuntimeError_) -> dict[str, dict[str, str]]:
    return {"error": {"code": err.code, "message": err.message}}


def to_response(err: errors.RuntimeError_, status: int | None = None) -> web.Response:
    body = json.dumps(error_body(err), ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(body=body, status=status or STATUS.get(type(err), 500), content_type="application/json")


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.RuntimeError_ as e:
        return to_response(e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        cls = _HTTP_CODES.get(e.status, errors.InvalidArgument)
        response = to_response(cls(e.reason), e.status)
        if "Allow" in e.headers:
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except (StreamBroken, asyncio.CancelledError):
        raise
    except RecursionError:
        # A JSON document (a manifest, a config) nested deeper than any real one: bad input, told as Go's decoder
        # tells it.
        return to_response(errors.InvalidArgument("invalid JSON document: exceeded max depth"))
    except Exception as e:
        if (full := nospace.explain(e)) is not None:
            return to_response(full)
        log.exception("unhandled error: %s", e)
        return to_response(errors.Internal(f"internal error: {type(e).__name__}: {e}"))
