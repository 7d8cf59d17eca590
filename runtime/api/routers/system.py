from __future__ import annotations

from pydantic import BaseModel

from runtime import __version__
from runtime.api.routing import Router
from runtime.services import Services
from runtime.sysinfo import HostFeatures, probe

router = Router(tags=("system",))


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
    ingests: int = 0  # abandoned ingests dropped
    seconds: float


class VersionOut(BaseModel):
    version: str
    api: str
    # Each loaded OCI runtime's version by name: the engine's `docker info` shows runc's.
    runtimes: dict[str, str] = {}


@router.get("/version")
async def version(s: Services) -> VersionOut:
    return VersionOut(version=__version__, api="v1", runtimes=s.tasks.runtime_versions())


@router.get("/sysinfo")
async def sysinfo() -> HostFeatures:
    return probe()


@router.get("/plugins")
async def plugins(s: Services) -> list[PluginOut]:
    return [
        PluginOut(type=p.registration.type, id=p.registration.id, requires=p.registration.requires,
                  status=p.status.value, reason=p.reason)
        for p in s.plugins.list()
    ]


@router.post("/gc")
async def gc(s: Services) -> GCOut:
    r = await s.collector.collect()
    return GCOut(**r.__dict__)
