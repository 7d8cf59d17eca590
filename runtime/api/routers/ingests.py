"""Content ingests: open by ref, write at offsets (raw bodies, streamed), commit verified, abort."""
from __future__ import annotations

from collections.abc import AsyncIterator

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from runtime.api.routing import Router
from runtime.api.streams import ClientDisconnect, upload
from runtime.content.store import ContentInfo, IngestStatus
from runtime.services import Services

router = Router("/content/ingests", tags=("content",))


class IngestOpen(BaseModel):
    ref: str
    expected: str | None = None
    total: int | None = None


class CommitRef(BaseModel):
    kind: str
    target: str


class IngestCommit(BaseModel):
    size: int = Field(ge=0)
    digest: str
    refs: list[CommitRef] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


@router.post("", writes=True)
async def open_ingest(body: IngestOpen, s: Services) -> IngestStatus:
    """Open `ref`, or resume it: the answer's offset is where the next write starts."""
    return await s.ingests.open(body.ref, body.expected, body.total)


@router.get("/{ref:path}/status")
async def ingest_status(ref: str, s: Services) -> IngestStatus:
    return await s.ingests.status(ref)


@router.post("/{ref:path}/commit", writes=True)
async def commit_ingest(ref: str, body: IngestCommit, s: Services) -> ContentInfo:
    return await s.ingests.commit(ref, body.size, body.digest, [(r.kind, r.target) for r in body.refs],
                                  body.labels)


@router.put("/{ref:path}")
async def write_ingest(ref: str, request: web.Request, offset: Annotated[int, Field(ge=0)],
                       s: Services) -> IngestStatus:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upload(request):
                yield chunk
        except ClientDisconnect:
            return  # what arrived is kept; the client resumes from the ingest's offset

    return await s.ingests.write(ref, offset, body())


@router.delete("/{ref:path}")
async def abort_ingest(ref: str, s: Services) -> None:
    await s.ingests.abort(ref)
