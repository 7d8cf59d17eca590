from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from runtime.api.deps import services, writable_namespace
from runtime.errors import NotFound
from runtime.metadata.snapshots import SnapshotService
from runtime.mount import Mount
from runtime.services import Services
from runtime.snapshots.snapshotter import Info, Usage

router = APIRouter(prefix="/snapshots", tags=["snapshots"])


class PrepareRequest(BaseModel):
    key: str = Field(min_length=1, max_length=512)
    parent: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class CommitRequest(BaseModel):
    name: str = Field(min_length=1, max_length=512)
    key: str = Field(min_length=1, max_length=512)
    labels: dict[str, str] = Field(default_factory=dict)


def _service(s: Services, snapshotter: str) -> SnapshotService:
    try:
        return s.snapshots[snapshotter]
    except KeyError:
        raise NotFound(f"snapshotter {snapshotter} not loaded") from None


@router.get("", response_model=list[str])
async def snapshotters(s: Services = Depends(services)) -> list[str]:
    return list(s.snapshots)


@router.get("/{snapshotter}", response_model=list[Info])
async def list_snapshots(snapshotter: str, s: Services = Depends(services)) -> list[Info]:
    return await _service(s, snapshotter).list()


@router.post("/{snapshotter}/prepare", response_model=list[Mount], status_code=201,
             dependencies=[Depends(writable_namespace)])
async def prepare(snapshotter: str, body: PrepareRequest, s: Services = Depends(services)) -> list[Mount]:
    return await _service(s, snapshotter).prepare(body.key, body.parent, body.labels)


@router.post("/{snapshotter}/view", response_model=list[Mount], status_code=201,
             dependencies=[Depends(writable_namespace)])
async def view(snapshotter: str, body: PrepareRequest, s: Services = Depends(services)) -> list[Mount]:
    return await _service(s, snapshotter).view(body.key, body.parent, body.labels)


@router.post("/{snapshotter}/commit", status_code=204)
async def commit(snapshotter: str, body: CommitRequest, s: Services = Depends(services)) -> Response:
    await _service(s, snapshotter).commit(body.name, body.key, body.labels)
    return Response(status_code=204)


@router.get("/{snapshotter}/{key:path}/mounts", response_model=list[Mount])
async def mounts(snapshotter: str, key: str, s: Services = Depends(services)) -> list[Mount]:
    return await _service(s, snapshotter).mounts(key)


@router.get("/{snapshotter}/{key:path}/usage", response_model=Usage)
async def usage(snapshotter: str, key: str, s: Services = Depends(services)) -> Usage:
    return await _service(s, snapshotter).usage(key)


@router.get("/{snapshotter}/{key:path}", response_model=Info)
async def stat(snapshotter: str, key: str, s: Services = Depends(services)) -> Info:
    return await _service(s, snapshotter).stat(key)


@router.delete("/{snapshotter}/{key:path}", status_code=204)
async def remove(snapshotter: str, key: str, s: Services = Depends(services)) -> Response:
    await _service(s, snapshotter).remove(key)
    return Response(status_code=204)
