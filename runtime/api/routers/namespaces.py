from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from runtime.api.deps import services
from runtime.metadata.namespaces import Namespace
from runtime.services import Services

router = APIRouter(prefix="/namespaces", tags=["namespaces"])


class NamespaceCreate(BaseModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)


class LabelsUpdate(BaseModel):
    labels: dict[str, str]


@router.get("", response_model=list[Namespace])
async def list_namespaces(s: Services = Depends(services)) -> list[Namespace]:
    return await s.namespaces.list()


@router.post("", response_model=Namespace, status_code=201)
async def create_namespace(body: NamespaceCreate, s: Services = Depends(services)) -> Namespace:
    return await s.namespaces.create(body.name, body.labels)


@router.get("/{name}", response_model=Namespace)
async def get_namespace(name: str, s: Services = Depends(services)) -> Namespace:
    return await s.namespaces.get(name)


@router.put("/{name}/labels", response_model=Namespace)
async def set_labels(name: str, body: LabelsUpdate, s: Services = Depends(services)) -> Namespace:
    return await s.namespaces.set_labels(name, body.labels)


@router.delete("/{name}", status_code=204)
async def delete_namespace(name: str, s: Services = Depends(services)) -> Response:
    await s.namespaces.delete(name)
    return Response(status_code=204)
