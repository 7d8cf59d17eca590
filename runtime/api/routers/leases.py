from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from runtime.api.deps import services, writable_namespace
from runtime.metadata.leases import Lease
from runtime.services import Services

router = APIRouter(prefix="/leases", tags=["leases"])


class LeaseCreate(BaseModel):
    id: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    expire_after: float | None = Field(default=None, gt=0)


@router.get("", response_model=list[Lease])
async def list_leases(s: Services = Depends(services)) -> list[Lease]:
    return await s.leases.list()


@router.post("", response_model=Lease, status_code=201, dependencies=[Depends(writable_namespace)])
async def create_lease(body: LeaseCreate, s: Services = Depends(services)) -> Lease:
    return await s.leases.create(body.id, body.labels, body.expire_after)


@router.delete("/{lease_id}", status_code=204)
async def delete_lease(lease_id: str, s: Services = Depends(services)) -> Response:
    await s.leases.delete(lease_id)
    await s.collector.collect()
    return Response(status_code=204)
