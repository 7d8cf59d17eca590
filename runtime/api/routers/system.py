from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from runtime import __version__
from runtime.api.deps import services
from runtime.services import Services
from runtime.sysinfo import HostFeatures, probe

router = APIRouter(tags=["system"])


class PluginOut(BaseModel):
    type: str
    id: str
    requires: list[str]
    status: str
    reason: str = ""


class GCOut(BaseModel):
    content_records: int
    blobs: int
    snapshots: int
    leases_expired: int
    seconds: float


class VersionOut(BaseModel):
    version: str
    api: str


@router.get("/version", response_model=VersionOut)
async def version() -> VersionOut:
    return VersionOut(version=__version__, api="v1")


@router.get("/sysinfo", response_model=HostFeatures)
async def sysinfo() -> HostFeatures:
    return probe()


@router.get("/plugins", response_model=list[PluginOut])
async def plugins(s: Services = Depends(services)) -> list[PluginOut]:
    return [
        PluginOut(type=p.registration.type, id=p.registration.id, requires=p.registration.requires,
                  status=p.status.value, reason=p.reason)
        for p in s.plugins.list()
    ]


@router.post("/gc", response_model=GCOut)
async def gc(s: Services = Depends(services)) -> GCOut:
    r = await s.collector.collect()
    return GCOut(**r.__dict__)
