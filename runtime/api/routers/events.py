from __future__ import annotations

import logging
from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends, Query

from runtime.api.deps import services
from runtime.api.streams import ndjson
from runtime.services import Services

log = logging.getLogger("runtime.api.events")

router = APIRouter(prefix="/events", tags=["events"])


@router.get("")
async def subscribe(
    topic: list[str] = Query(default_factory=list),
    namespace: list[str] = Query(default_factory=list),
    since: float | None = Query(default=None, description="Unix seconds: first the recorded events from then on"),
    s: Services = Depends(services),
) -> Any:
    """Events as NDJSON, optionally filtered by topic (prefix with '*') and namespace: the recorded ones from
    `since` (the journal's, across restarts), then the live ones."""
    stream = s.events.subscribe(set(namespace) or None, topic or None, since)

    async def lines() -> AsyncIterator[dict[str, Any]]:
        # Headers go out before the first event so subscribers know they are live.
        yield {"status": "subscribed"}
        try:
            async for env in stream:
                yield env.wire()
        except OverflowError as e:
            log.warning("%s", e)
            yield {"error": {"code": "unavailable", "message": str(e)}}

    return ndjson(lines())
