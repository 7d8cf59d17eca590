"""What the CRI plugin keeps of its pods and containers, stored in the runtime's own container records.

Each pod sandbox is a runtime container (whose task is the pause process, when the pod has one) and each
CRI container a runtime container, all in the CRI namespace; their CRI side (the kubelet's config as it sent it, the pod's
network, the log path) rides in labels of those records, so a restarted runtime finds every pod and
container again from its database alone, as containerd's CRI plugin does from its container extensions.
"""
from __future__ import annotations

import base64
import time
from typing import Any

from cri_api.v1 import api_pb2 as cri
from pydantic import BaseModel, Field

KIND_LABEL = "io.pyengine.cri.kind"
RECORD_LABEL = "io.pyengine.cri.record"
SANDBOX_LABEL = "io.pyengine.cri.sandbox"

SANDBOX = "sandbox"
CONTAINER = "container"


def now_ns() -> int:
    return time.time_ns()


def _encode(message: Any) -> str:
    return base64.b64encode(message.SerializeToString()).decode()


class SandboxRecord(BaseModel):
    id: str
    config: str  # the PodSandboxConfig, serialized (base64 of the protobuf)
    runtime_handler: str = ""
    created_at: int = Field(default_factory=now_ns)
    netns: str = ""  # the pod's network namespace path; "" for the node's network
    ip: str = ""
    additional_ips: list[str] = Field(default_factory=list)
    # Set by StopPodSandbox: a stopped pod stays NOTREADY even if its pause process is somehow back.
    stopped: bool = False
    # Whether a pause process holds the pod's namespaces; without one they are pinned to these files
    # (namespace kind -> path), see runtime/cri/pod_namespaces.py.
    pause: bool = True
    pinned: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def new(cls, id: str, config: cri.PodSandboxConfig, runtime_handler: str) -> "SandboxRecord":
        return cls(id=id, config=_encode(config), runtime_handler=runtime_handler)

    def pod_config(self) -> cri.PodSandboxConfig:
        return cri.PodSandboxConfig.FromString(base64.b64decode(self.config))


class ContainerRecord(BaseModel):
    id: str
    sandbox_id: str
    config: str  # the ContainerConfig, serialized
    created_at: int = Field(default_factory=now_ns)
    image_ref: str = ""  # the image as resolved: its name@digest
    image_id: str = ""  # the image's config digest
    image_name: str = ""  # its first tag at create (what containerd's status shows), "" when it had none
    log_path: str = ""  # absolute; "" when the kubelet asked for none
    # The LinuxContainerResources of the last UpdateContainerResources (serialized); "": those of the config.
    resources: str = ""
    # Why StartContainer failed, and when: the container is EXITED with containerd's StartError from then on.
    start_error: str = ""
    start_failed_at: int = 0

    @classmethod
    def new(cls, id: str, sandbox_id: str, config: cri.ContainerConfig, image_ref: str, image_id: str,
            log_path: str) -> "ContainerRecord":
        return cls(id=id, sandbox_id=sandbox_id, config=_encode(config), image_ref=image_ref, image_id=image_id,
                   log_path=log_path)

    def container_config(self) -> cri.ContainerConfig:
        return cri.ContainerConfig.FromString(base64.b64decode(self.config))

    def current_resources(self) -> cri.LinuxContainerResources | None:
        if self.resources:
            return cri.LinuxContainerResources.FromString(base64.b64decode(self.resources))
        config = self.container_config()
        return config.linux.resources if config.linux.HasField("resources") else None

    def set_resources(self, resources: cri.LinuxContainerResources) -> None:
        self.resources = _encode(resources)


def sandbox_labels(record: SandboxRecord) -> dict[str, str]:
    return {KIND_LABEL: SANDBOX, RECORD_LABEL: record.model_dump_json()}


def container_labels(record: ContainerRecord) -> dict[str, str]:
    return {KIND_LABEL: CONTAINER, SANDBOX_LABEL: record.sandbox_id, RECORD_LABEL: record.model_dump_json()}


def sandbox_name(m: cri.PodSandboxMetadata) -> str:
    """The kubelet's identity of a pod attempt: two sandboxes may never share it."""
    return "_".join([m.name, m.namespace, m.uid, str(m.attempt)])


def container_name(m: cri.ContainerMetadata, pod: cri.PodSandboxMetadata) -> str:
    return "_".join([m.name, pod.name, pod.namespace, pod.uid, str(m.attempt)])
