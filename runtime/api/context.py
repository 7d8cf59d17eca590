"""Middleware that sets the request's namespace and lease once, at the edge."""
from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from runtime import errors
from runtime.api.errors import to_response
from runtime.metadata.leases import reset_lease, set_lease
from runtime.namespaces import reset_namespace, set_namespace
from runtime.wire import DEFAULT_NAMESPACE, LEASE_HEADER, NAMESPACE_HEADER


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        ns_token = set_namespace(request.headers.get(NAMESPACE_HEADER, DEFAULT_NAMESPACE))
    except errors.InvalidArgument as e:
        return to_response(e)
    lease_token = set_lease(request.headers.get(LEASE_HEADER) or None)
    try:
        return await handler(request)
    finally:
        reset_lease(lease_token)
        reset_namespace(ns_token)
