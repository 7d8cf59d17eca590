"""Content ingests: open by ref, write at offsets (raw bodies, streamed), commit verified, abort."""
from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from runtime.api.deps import services, writable_namespace
from runtime.content.store import ContentInfo, IngestStatus
from runtime.services import Services

router = APIRouter(prefix="/content/ingests", tags=["content"])


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


@router.post("", response_model=IngestStatus, dependencies=[Depends(writable_namespace)])
async def open_ingest(body: IngestOpen, s: Services = Depends(services)) -> IngestStatus:
    """Open `ref`, or resume it: the answer's offset is where the next write starts."""
    return await s.ingests.open(body.ref, body.expected, body.total)


@router.get("/{ref:path}/status", response_model=IngestStatus)
async def ingest_status(ref: str, s: Services = Depends(services)) -> IngestStatus:
    return await s.ingests.status(ref)


@router.post("/{ref:path}/commit", response_model=ContentInfo, dependencies=[Depends(writable_namespace)])
async def commit_ingest(ref: str, body: IngestCommit, s: Services = Depends(services)) -> ContentInfo:
    return await s.ingests.commit(ref, body.size, body.digest, [(r.kind, r.target) for r in body.refs],
                                  body.labels)


@router.put("/{ref:path}", response_model=IngestStatus)
async def write_ingest(ref: str, request: Request, offset: int = Query(ge=0),
                       s: Services = Depends(services)) -> IngestStatus:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in request.stream():
                yield chunk
        except ClientDisconnect:
            return  # what arrived is kept; the client resumes from the ingest's offset

    return await s.ingests.write(ref, offset, body())


@router.delete("/{ref:path}", status_code=204)
async def abort_ingest(ref: str, s: Services = Depends(services)) -> Response:
    await s.ingests.abort(ref)
    return Response(status_code=204)
