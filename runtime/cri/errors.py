"""The one place runtime errors become gRPC status codes for the CRI services.

Every servicer method is wrapped by `rpc`: a typed runtime error aborts the call with its code and
message (kubelet reads NotFound to tell "already gone" from a failure); anything else is an internal
error with its text, logged once with its traceback, never a dropped connection.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from runtime import errors

log = logging.getLogger("runtime.cri")

# What each RPC is handed; the servicers read and write messages only through their arguments and results.
Context = grpc.aio.ServicerContext[Any, Any]

CODES: dict[type[errors.RuntimeError_], grpc.StatusCode] = {
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.DataLoss: grpc.StatusCode.DATA_LOSS,
    errors.Internal: grpc.StatusCode.INTERNAL,
}


class Unimplemented(errors.RuntimeError_):
    """A CRI call this runtime does not offer (checkpointing): kubelet reads UNIMPLEMENTED as "not supported"."""


CODES[Unimplemented] = grpc.StatusCode.UNIMPLEMENTED


def register(cls: type[errors.RuntimeError_], code: grpc.StatusCode) -> None:
    """A CRI-only error type and its code (the runtime's closed set stays as the HTTP API maps it)."""
    CODES[cls] = code


def code_of(e: errors.RuntimeError_) -> grpc.StatusCode:
    for cls in type(e).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.UNKNOWN


R = TypeVar("R")


async def _abort(name: str, context: Context, e: Exception) -> None:
    if isinstance(e, grpc.aio.AbortError):
        raise e
    if isinstance(e, errors.RuntimeError_):
        await context.abort(code_of(e), str(e))
    log.exception("rpc=%s failed", name)
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")


def rpc(fn: Callable[[Any, Any, Context], Awaitable[R]]
        ) -> Callable[[Any, Any, Context], Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: Context) -> R:
        try:
            return await fn(self, request, context)
        except Exception as e:
            await _abort(fn.__name__, context, e)
        raise AssertionError("unreachable: abort raises")

    return wrapper


def stream_rpc(fn: Callable[[Any, Any, Context], AsyncIterator[R]]
               ) -> Callable[[Any, Any, Context], AsyncIterator[R]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: Context) -> AsyncIterator[R]:
        try:
            async for item in fn(self, request, context):
                yield item
        except Exception as e:
            await _abort(fn.__name__, context, e)

    return wrapper
