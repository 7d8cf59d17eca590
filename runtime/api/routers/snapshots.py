from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.api.routing import Router
from runtime.errors import NotFound
from runtime.metadata.snapshots import SnapshotService
from runtime.mount import Mount
from runtime.services import Services
from runtime.snapshots.snapshotter import Info, Usage

router = Router("/snapshots", tags=("snapshots",))


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


@router.get("")
async def snapshotters(s: Services) -> list[str]:
    return list(s.snapshots)


@router.get("/{snapshotter}")
async def list_snapshots(snapshotter: str, s: Services) -> list[Info]:
    return await _service(s, snapshotter).list()


@router.post("/{snapshotter}/prepare", status=201, writes=True)
async def prepare(snapshotter: str, body: PrepareRequest, s: Services) -> list[Mount]:
    return await _service(s, snapshotter).prepare(body.key, body.parent, body.labels)


@router.post("/{snapshotter}/view", status=201, writes=True)
async def view(snapshotter: str, body: PrepareRequest, s: Services) -> list[Mount]:
    return await _service(s, snapshotter).view(body.key, body.parent, body.labels)


@router.post("/{snapshotter}/commit")
async def commit(snapshotter: str, body: CommitRequest, s: Services) -> None:
    await _service(s, snapshotter).commit(body.name, body.key, body.labels)


class UsageRequest(BaseModel):
    keys: list[str] = Field(max_length=100_000)


@router.post("/{snapshotter}/usage")
async def usages(snapshotter: str, body: UsageRequest, s: Services) -> dict[str, Usage]:
    """The usage of many snapshots in one request (`docker ps --size`); keys not found are left out."""
    return await _service(s, snapshotter).usages(body.keys)


@router.get("/{snapshotter}/{key:path}/mounts")
async def mounts(snapshotter: str, key: str, s: Services) -> list[Mount]:
    return await _service(s, snapshotter).mounts(key)


@router.get("/{snapshotter}/{key:path}/usage")
async def usage(snapshotter: str, key: str, s: Services) -> Usage:
    return await _service(s, snapshotter).usage(key)


@router.get("/{snapshotter}/{key:path}")
async def stat(snapshotter: str, key: str, s: Services) -> Info:
    return await _service(s, snapshotter).stat(key)


@router.delete("/{snapshotter}/{key:path}")
async def remove(snapshotter: str, key: str, s: Services) -> None:
    await _service(s, snapshotter).remove(key)
