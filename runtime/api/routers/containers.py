from __future__ import annotations

from pydantic import BaseModel

from runtime.api.routing import Router
from runtime.containers import ContainerCreate, CreatedContainer
from runtime.errors import FailedPrecondition
from runtime.metadata.containers import Container
from runtime.services import Services
from runtime.tasks.spec_options import ResourceOptions

router = Router("/containers", tags=("containers",))


class LabelsUpdate(BaseModel):
    labels: dict[str, str]


class ResourcesUpdate(BaseModel):
    resources: ResourceOptions


@router.get("")
async def list_containers(s: Services) -> list[Container]:
    return await s.containers.store.list()


@router.post("", status=201, writes=True)
async def create_container(body: ContainerCreate, s: Services) -> CreatedContainer:
    return await s.containers.create(body)


@router.get("/{container_id}")
async def get_container(container_id: str, s: Services) -> Container:
    return await s.containers.store.get(container_id)


@router.put("/{container_id}/labels")
async def set_labels(container_id: str, body: LabelsUpdate, s: Services) -> Container:
    return await s.containers.store.set_labels(container_id, body.labels)


@router.put("/{container_id}/resources")
async def set_resources(container_id: str, body: ResourcesUpdate, s: Services) -> Container:
    """The limits the container's next task starts with; POST /tasks/{id}/update changes a live task's."""
    return await s.containers.update_resources(container_id, body.resources)


@router.delete("/{container_id}")
async def delete_container(container_id: str, s: Services, keep_snapshot: bool = False) -> None:
    await s.containers.store.get(container_id)
    if s.tasks.has(container_id):
        raise FailedPrecondition(f"cannot delete container {container_id}: it has a task; delete the task first")
    await s.containers.delete(container_id, keep_snapshot=keep_snapshot)
