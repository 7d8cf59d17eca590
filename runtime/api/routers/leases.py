from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.api.routing import Router
from runtime.metadata.leases import Lease
from runtime.services import Services

router = Router("/leases", tags=("leases",))


class LeaseCreate(BaseModel):
    id: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    expire_after: float | None = Field(default=None, gt=0)


@router.get("")
async def list_leases(s: Services) -> list[Lease]:
    return await s.leases.list()


@router.post("", status=201, writes=True)
async def create_lease(body: LeaseCreate, s: Services) -> Lease:
    return await s.leases.create(body.id, body.labels, body.expire_after)


@router.delete("/{lease_id}")
async def delete_lease(lease_id: str, s: Services) -> None:
    await s.leases.delete(lease_id)
    await s.collector.collect()
