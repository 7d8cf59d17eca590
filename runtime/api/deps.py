"""Router access to the daemon's services."""
from __future__ import annotations

from fastapi import Request

from runtime.namespaces import require_namespace
from runtime.services import Services


def services(request: Request) -> Services:
    return request.app.state.services


async def writable_namespace(request: Request) -> None:
    """For writes: create the request's namespace on first use, announcing it."""
    await request.app.state.services.namespaces.ensure(require_namespace())
