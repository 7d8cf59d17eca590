"""The runtime leases of the engine's own operations (an image's write, a load): each holds what its operation
wrote until an image names it, and none outlives the engine process that took it."""
from __future__ import annotations

import contextlib
import secrets

from runtime.client import NotFound
from runtime.client.protocol import LeaseAPI

LEASE_PREFIX = "pyengine-op-"


def new_lease_id() -> str:
    return f"{LEASE_PREFIX}{secrets.token_hex(8)}"


async def drop_leftover_leases(runtime: LeaseAPI, started: float) -> list[str]:
    """At the engine's start: the leases an earlier engine process left (killed mid-load, mid-import, mid-build),
    which would hold what their operations wrote for hours; their ids. Those taken since `started` are this
    process's own."""
    gone = [str(lease["id"]) for lease in await runtime.leases()
            if str(lease["id"]).startswith(LEASE_PREFIX) and float(lease.get("created") or 0) < started]
    for lease_id in gone:
        with contextlib.suppress(NotFound):
            await runtime.remove_lease(lease_id)
    return gone
