"""CRI status and list messages built from the plugin's records and the runtime's task state."""
from __future__ import annotations

import json
from typing import Any

from cri_api.v1 import api_pb2 as cri
from google.protobuf import json_format

from runtime.cri.containers import Containers
from runtime.cri.records import ContainerRecord, SandboxRecord
from runtime.cri.sandboxes import Sandboxes
from runtime.cri.spec import resource_options
from runtime.cri.state import CRIState
from runtime.errors import InvalidArgument

_OOM_REASON = "OOMKilled"


def _ns(seconds: float | None) -> int:
    return int(seconds * 1e9) if seconds else 0


def _selected(labels: Any, selector: Any) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class Views:
    def __init__(self, state: CRIState, sandboxes: Sandboxes, containers: Containers) -> None:
        self._s = state
        self._sandboxes = sandboxes
        self._containers = containers

    # sandboxes ------------------------------------------------------------

    def sandbox(self, record: SandboxRecord) -> cri.PodSandbox:
        config = record.pod_config()
        return cri.PodSandbox(id=record.id, metadata=config.metadata, state=self._sandboxes.state_of(record),
                              created_at=record.created_at, labels=config.labels, annotations=config.annotations,
                              runtime_handler=record.runtime_handler)

    def sandbox_records(self, id_prefix: str, labels: Any, state: int | None = None) -> list[SandboxRecord]:
        if not hex_prefix(id_prefix):
            return []
        if state is not None and state not in cri.PodSandboxState.values():
            raise InvalidArgument(f"invalid sandbox state filter {state}")
        return [r for r in self._s.sandboxes.values()
                if r.id.startswith(id_prefix) and _selected(r.pod_config().labels, labels)
                and (state is None or self._sandboxes.state_of(r) == state)]

    def sandboxes(self, f: cri.PodSandboxFilter | None) -> list[cri.PodSandbox]:
        if f is None:
            return [self.sandbox(r) for r in self._s.sandboxes.values()]
        state = f.state.state if f.HasField("state") else None
        return [self.sandbox(r) for r in self.sandbox_records(f.id, f.label_selector, state)]

    def sandbox_status(self, record: SandboxRecord, verbose: bool) -> cri.PodSandboxStatusResponse:
        config = record.pod_config()
        nso = config.linux.security_context.namespace_options
        status = cri.PodSandboxStatus(
            id=record.id, metadata=config.metadata, state=self._sandboxes.state_of(record),
            created_at=record.created_at, labels=config.labels, annotations=config.annotations,
            runtime_handler=record.runtime_handler)
        status.network.SetInParent()  # containerd's `{"ip": ""}` for the node's network and a stopped pod
        if record.ip and not record.stopped:  # a stopped pod's address is back in the pool
            status.network.ip = record.ip
            status.network.additional_ips.extend(cri.PodIP(ip=ip) for ip in record.additional_ips)
        status.linux.namespaces.options.CopyFrom(cri.NamespaceOption(network=nso.network, pid=nso.pid, ipc=nso.ipc))
        response = cri.PodSandboxStatusResponse(status=status)
        if verbose:
            t = self._s.task(record.id)
            response.info["info"] = json.dumps({
                "pid": t.pid if t else 0,
                # A pod without a pause process has none to tell of: its namespaces are pinned to files.
                "processStatus": t.status.value if t else "deleted" if record.pause else "none",
                "pinnedNamespaces": record.pinned,
                "netNamespacePath": record.netns,
                "image": self._s.config.sandbox_image,
                "runtimeHandler": record.runtime_handler,
                "config": json.loads(_message_json(config)),
            })
        return response

    # containers -------------------------------------------------------------

    def container(self, record: ContainerRecord) -> cri.Container:
        config = record.container_config()
        return cri.Container(id=record.id, pod_sandbox_id=record.sandbox_id, metadata=config.metadata,
                             image=cri.ImageSpec(image=config.image.image, user_specified_image=config.image.image),
                             image_ref=record.image_id, state=self._containers.state_of(record),
                             created_at=record.created_at, labels=config.labels, annotations=config.annotations,
                             image_id=record.image_id)

    def container_records(self, id_prefix: str, sandbox_prefix: str, labels: Any,
                          state: int | None = None) -> list[ContainerRecord]:
        if not (hex_prefix(id_prefix) and hex_prefix(sandbox_prefix)):
            return []
        if state is not None and state not in cri.ContainerState.values():
            raise InvalidArgument(f"invalid container state filter {state}")
        return [r for r in self._s.cri_containers.values()
                if r.id.startswith(id_prefix) and r.sandbox_id.startswith(sandbox_prefix)
                and _selected(r.container_config().labels, labels)
                and (state is None or self._containers.state_of(r) == state)]

    def containers(self, f: cri.ContainerFilter | None) -> list[cri.Container]:
        if f is None:
            return [self.container(r) for r in self._s.cri_containers.values()]
        state = f.state.state if f.HasField("state") else None
        return [self.container(r) for r in self.container_records(f.id, f.pod_sandbox_id, f.label_selector, state)]

    def container_status(self, record: ContainerRecord, verbose: bool) -> cri.ContainerStatusResponse:
        config = record.container_config()
        t = self._s.task(record.id)
        status = cri.ContainerStatus(
            id=record.id, metadata=config.metadata, state=self._containers.state_of(record),
            created_at=record.created_at,
            image=cri.ImageSpec(image=record.image_name or config.image.image, user_specified_image=config.image.image),
            image_ref=record.image_ref, image_id=record.image_id, labels=config.labels,
            annotations=config.annotations, log_path=record.log_path,
            mounts=[cri.Mount(container_path=m.container_path, host_path=m.host_path, readonly=m.readonly,
                              propagation=m.propagation) for m in config.mounts])
        if t is not None:
            status.started_at = _ns(t.started_at)
            if t.exit_status is not None:
                status.finished_at = _ns(t.exited_at)
                status.exit_code = t.exit_status
                status.reason = _OOM_REASON if t.oom_killed else ("Completed" if t.exit_status == 0 else "Error")
        elif record.start_error:  # containerd's: exit code 128, reason StartError, the runtime's words
            status.finished_at, status.exit_code = record.start_failed_at, 128
            status.reason, status.message = "StartError", record.start_error
        if (resources := record.current_resources()) is not None:
            status.resources.linux.CopyFrom(resources)
            # What the container got: the swap limit resource_options() set, as containerd reports it.
            swap = resource_options(resources).get("memory_swap")
            if swap and not resources.memory_swap_limit_in_bytes:
                status.resources.linux.memory_swap_limit_in_bytes = swap
        response = cri.ContainerStatusResponse(status=status)
        if verbose:
            response.info["info"] = json.dumps({
                "sandboxID": record.sandbox_id,
                "pid": t.pid if t else 0,
                "processStatus": t.status.value if t else "created",
                "logPath": record.log_path,
                "config": json.loads(_message_json(config)),
            })
        return response


def _message_json(message: Any) -> str:
    return json_format.MessageToJson(message)


def hex_prefix(value: str) -> bool:
    """Whether an ID filter can match at all: one that is no lower-case hex matches nothing, as in containerd."""
    return all(c in "0123456789abcdef" for c in value)
