from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from runtime.api.deps import services, writable_namespace
from runtime.containers import ContainerCreate
from runtime.errors import FailedPrecondition
from runtime.metadata.containers import Container
from runtime.services import Services
from runtime.tasks.spec_options import ResourceOptions

router = APIRouter(prefix="/containers", tags=["containers"])


class LabelsUpdate(BaseModel):
    labels: dict[str, str]


class ResourcesUpdate(BaseModel):
    resources: ResourceOptions


@router.get("", response_model=list[Container])
async def list_containers(s: Services = Depends(services)) -> list[Container]:
    return await s.containers.store.list()


@router.post("", response_model=Container, status_code=201, dependencies=[Depends(writable_namespace)])
async def create_container(body: ContainerCreate, s: Services = Depends(services)) -> Container:
    return await s.containers.create(body)


@router.get("/{container_id}", response_model=Container)
async def get_container(container_id: str, s: Services = Depends(services)) -> Container:
    return await s.containers.store.get(container_id)


@router.put("/{container_id}/labels", response_model=Container)
async def set_labels(container_id: str, body: LabelsUpdate, s: Services = Depends(services)) -> Container:
    return await s.containers.store.set_labels(container_id, body.labels)


@router.put("/{container_id}/resources", response_model=Container)
async def set_resources(container_id: str, body: ResourcesUpdate, s: Services = Depends(services)) -> Container:
    """The limits the container's next task starts with; POST /tasks/{id}/update changes a live task's."""
    return await s.containers.update_resources(container_id, body.resources)


@router.delete("/{container_id}", status_code=204)
async def delete_container(container_id: str, keep_snapshot: bool = False,
                           s: Services = Depends(services)) -> Response:
    await s.containers.store.get(container_id)
    if s.tasks.has(container_id):
        raise FailedPrecondition(f"cannot delete container {container_id}: it has a task; delete the task first")
    await s.containers.delete(container_id, keep_snapshot=keep_snapshot)
    return Response(status_code=204)
