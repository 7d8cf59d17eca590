"""GetContainerEvents: the runtime's task events, seen as the kubelet's container lifecycle events."""
from __future__ import annotations

from collections.abc import AsyncIterator

from cri_api.v1 import api_pb2 as cri

from runtime.cri.state import CRIState
from runtime.cri.status import Views
from runtime.events import topics

_TYPES = {
    topics.TASK_START: cri.CONTAINER_STARTED_EVENT,
    topics.TASK_EXIT: cri.CONTAINER_STOPPED_EVENT,
    topics.CONTAINER_CREATE: cri.CONTAINER_CREATED_EVENT,
    topics.CONTAINER_DELETE: cri.CONTAINER_DELETED_EVENT,
}


async def container_events(state: CRIState, statuses: Views) -> AsyncIterator[cri.ContainerEventResponse]:
    async for env in state.events.subscribe({state.namespace}, list(_TYPES)):
        container_id = str(env.event.get("container_id") or env.event.get("id") or "")
        if env.topic == topics.TASK_EXIT and env.event.get("exec_id") not in (None, "", container_id):
            continue  # an exec ended, not the container
        response = cri.ContainerEventResponse(container_id=container_id, container_event_type=_TYPES[env.topic],
                                              created_at=int(env.timestamp * 1e9))
        sandbox = state.sandboxes.find(container_id) if len(container_id) == 64 else None
        if sandbox is not None:
            response.pod_sandbox_status.CopyFrom(statuses.sandbox_status(sandbox, False).status)
        else:
            record = state.cri_containers.find(container_id) if container_id else None
            if record is not None:
                owner = state.sandboxes.find(record.sandbox_id)
                if owner is not None:
                    response.pod_sandbox_status.CopyFrom(statuses.sandbox_status(owner, False).status)
                response.containers_statuses.append(statuses.container_status(record, False).status)
        yield response

