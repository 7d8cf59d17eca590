from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.api.routing import Router
from runtime.metadata.namespaces import Namespace
from runtime.services import Services

router = Router("/namespaces", tags=("namespaces",))


class NamespaceCreate(BaseModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)


class LabelsUpdate(BaseModel):
    labels: dict[str, str]


@router.get("")
async def list_namespaces(s: Services) -> list[Namespace]:
    return await s.namespaces.list()


@router.post("", status=201)
async def create_namespace(body: NamespaceCreate, s: Services) -> Namespace:
    return await s.namespaces.create(body.name, body.labels)


@router.get("/{name}")
async def get_namespace(name: str, s: Services) -> Namespace:
    return await s.namespaces.get(name)


@router.put("/{name}/labels")
async def set_labels(name: str, body: LabelsUpdate, s: Services) -> Namespace:
    return await s.namespaces.set_labels(name, body.labels)


@router.delete("/{name}")
async def delete_namespace(name: str, s: Services) -> None:
    await s.namespaces.delete(name)
