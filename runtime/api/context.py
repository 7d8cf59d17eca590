"""ASGI middleware that sets the request's namespace and lease once, at the edge."""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from runtime import errors
from runtime.api.errors import STATUS, error_body
from runtime.metadata.leases import reset_lease, set_lease
from runtime.namespaces import reset_namespace, set_namespace
from runtime.wire import DEFAULT_NAMESPACE, LEASE_HEADER, NAMESPACE_HEADER

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]

_NS = NAMESPACE_HEADER.lower().encode()
_LEASE = LEASE_HEADER.lower().encode()


class ContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ns = headers.get(_NS, DEFAULT_NAMESPACE.encode()).decode("latin-1")
        lease = headers.get(_LEASE)
        try:
            ns_token = set_namespace(ns)
        except errors.InvalidArgument as e:
            body = json.dumps(error_body(e)).encode()
            await send({"type": "http.response.start", "status": STATUS[errors.InvalidArgument],
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        lease_token = set_lease(lease.decode("latin-1") if lease else None)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_lease(lease_token)
            reset_namespace(ns_token)
