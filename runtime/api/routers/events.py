from __future__ import annotations

from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends, Query

from runtime.api.deps import services
from runtime.api.streams import ndjson
from runtime.services import Services

router = APIRouter(prefix="/events", tags=["events"])


@router.get("")
async def subscribe(
    topic: list[str] = Query(default_factory=list),
    namespace: list[str] = Query(default_factory=list),
    s: Services = Depends(services),
) -> Any:
    """Live events as NDJSON, optionally filtered by topic (prefix with '*') and namespace."""
    stream = s.events.subscribe(set(namespace) or None, topic or None)

    async def lines() -> AsyncIterator[dict[str, Any]]:
        # Headers go out before the first event so subscribers know they are live.
        yield {"status": "subscribed"}
        try:
            async for env in stream:
                yield env.wire()
        except OverflowError as e:
            yield {"error": {"code": "unavailable", "message": str(e)}}

    return ndjson(lines())
