"""The one place runtime errors become HTTP statuses (the client maps them back)."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

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


def error_body(err: errors.RuntimeError_) -> dict[str, dict[str, str]]:
    return {"error": {"code": err.code, "message": err.message}}


def to_response(err: errors.RuntimeError_) -> JSONResponse:
    return JSONResponse(error_body(err), status_code=STATUS.get(type(err), 500))


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.RuntimeError_)
    async def _typed(_: Request, exc: errors.RuntimeError_) -> JSONResponse:
        return to_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return to_response(errors.InvalidArgument("invalid request: " + "; ".join(parts)))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        cls = _HTTP_CODES.get(exc.status_code, errors.InvalidArgument)
        resp = to_response(cls(str(exc.detail)))
        resp.status_code = exc.status_code
        return resp

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if (full := nospace.explain(exc)) is not None:
            return to_response(full)
        log.exception("unhandled error: %s", exc)
        return to_response(errors.Internal(f"internal error: {type(exc).__name__}: {exc}"))
