from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from runtime.api.routing import Router
from runtime.content.store import ContentInfo, IngestStatus
from runtime.services import Services

router = Router("/content", tags=("content",))


class LabelsUpdate(BaseModel):
    labels: dict[str, str]


@router.get("")
async def list_content(s: Services) -> list[ContentInfo]:
    return await s.content.list()


@router.get("/ingests")
async def list_ingests(s: Services) -> list[IngestStatus]:
    return await s.content.ingests()


@router.get("/{digest}")
async def content_info(digest: str, s: Services) -> ContentInfo:
    return await s.content.info(digest)


@router.get("/{digest}/blob")
async def read_blob(digest: str, s: Services) -> web.FileResponse:
    await s.content.info(digest)
    return web.FileResponse(s.content.path(digest), headers={"Content-Type": "application/octet-stream"})


@router.put("/{digest}/labels")
async def set_labels(digest: str, body: LabelsUpdate, s: Services) -> ContentInfo:
    return await s.content.set_labels(digest, body.labels)


@router.delete("/{digest}")
async def delete_content(digest: str, s: Services) -> None:
    await s.content.delete(digest)
    await s.collector.collect()
