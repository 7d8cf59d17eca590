"""NDJSON streaming responses."""
from __future__ import annotations

import json
from typing import Any, AsyncIterator

from fastapi.responses import StreamingResponse

NDJSON = "application/x-ndjson"


def ndjson(lines: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for obj in lines:
            yield (json.dumps(obj, separators=(",", ":")) + "\n").encode()

    return StreamingResponse(body(), media_type=NDJSON)
