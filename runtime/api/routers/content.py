from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel

from runtime.api.deps import services
from runtime.content.store import ContentInfo, IngestStatus
from runtime.services import Services

router = APIRouter(prefix="/content", tags=["content"])


class LabelsUpdate(BaseModel):
    labels: dict[str, str]


@router.get("", response_model=list[ContentInfo])
async def list_content(s: Services = Depends(services)) -> list[ContentInfo]:
    return await s.content.list()


@router.get("/ingests", response_model=list[IngestStatus])
async def list_ingests(s: Services = Depends(services)) -> list[IngestStatus]:
    return await s.content.ingests()


@router.get("/{digest}", response_model=ContentInfo)
async def content_info(digest: str, s: Services = Depends(services)) -> ContentInfo:
    return await s.content.info(digest)


@router.get("/{digest}/blob")
async def read_blob(digest: str, s: Services = Depends(services)) -> FileResponse:
    await s.content.info(digest)
    return FileResponse(s.content.path(digest), media_type="application/octet-stream")


@router.put("/{digest}/labels", response_model=ContentInfo)
async def set_labels(digest: str, body: LabelsUpdate, s: Services = Depends(services)) -> ContentInfo:
    return await s.content.set_labels(digest, body.labels)


@router.delete("/{digest}", status_code=204)
async def delete_content(digest: str, s: Services = Depends(services)) -> Response:
    await s.content.delete(digest)
    await s.collector.collect()
    return Response(status_code=204)
