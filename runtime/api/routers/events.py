from __future__ import annotations

import logging
from typing import Annotated, Any, AsyncGenerator

from pydantic import Field


from runtime.api.routing import Router, Stream
from runtime.api.streams import ndjson
from runtime.services import Services

log = logging.getLogger("runtime.api.events")

router = Router("/events", tags=("events",))


@router.get("")
async def subscribe(
    s: Services,
    topic: tuple[str, ...] = (),
    namespace: tuple[str, ...] = (),
    since: Annotated[float | None, Field(description="Unix seconds: first the recorded events from then on")] = None,
) -> Stream:
    """Events as NDJSON, optionally filtered by topic (prefix with '*') and namespace: the recorded ones from
    `since` (the journal's, across restarts), then the live ones."""
    stream = s.events.subscribe(set(namespace) or None, list(topic) or None, since)

    async def lines() -> AsyncGenerator[dict[str, Any], None]:
        # Headers go out before the first event so subscribers know they are live.
        yield {"status": "subscribed"}
        try:
            async for env in stream:
                yield env.wire()
        except OverflowError as e:
            log.warning("%s", e)
            yield {"error": {"code": "unavailable", "message": str(e)}}

    return ndjson(lines())
