"""Small blobs stored in one request: an ingest opened, written and committed at once (image configs,
manifests). Big or resumable writes go through /content/ingests; this is the same path without the
two extra round trips, and with the same verification, lease and GC refs."""
from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import AsyncIterator

from pydantic import BaseModel, Field

from runtime.api.routing import Router
from runtime.api.routers.ingests import CommitRef
from runtime.content.store import ContentInfo
from runtime.errors import InvalidArgument, NotFound
from runtime.services import Services

router = Router("/content/blobs", tags=("content",))

MAX_BLOB = 4 << 20


class BlobPut(BaseModel):
    digest: str
    data: str  # base64
    refs: list[CommitRef] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


@router.post("", status=201, writes=True)
async def put_blob(body: BlobPut, s: Services) -> ContentInfo:
    """Store `data` as blob `digest` (verified) under the request's lease, with its GC refs."""
    try:
        data = base64.b64decode(body.data, validate=True)
    except ValueError:  # binascii.Error is one, and so is a non-ASCII character's
        raise InvalidArgument("blob data is not valid base64") from None
    if len(data) > MAX_BLOB:
        raise InvalidArgument(f"a blob stored in one request is at most {MAX_BLOB} bytes; use an ingest")
    ref = f"blob-{secrets.token_hex(8)}"
    await s.ingests.open(ref, body.digest, len(data))
    try:
        await s.ingests.write(ref, 0, _once(data))
        return await s.ingests.commit(ref, len(data), body.digest, [(r.kind, r.target) for r in body.refs],
                                      body.labels)
    except BaseException:
        with contextlib.suppress(NotFound):
            await s.ingests.abort(ref)
        raise
