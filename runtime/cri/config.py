"""The `[cri]` section of the runtime's TOML: where the CRI plugin listens and how pods are made."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_CRI_ADDRESS = "/run/pyengine/cri.sock"
# Kubernetes 1.36's default sandbox image; tests seed a stand-in under this name in their registry.
DEFAULT_SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"


class CRIConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    address: str = DEFAULT_CRI_ADDRESS
    # The runtime namespace every CRI object lives in (containerd's choice), never the engine's.
    namespace: str = "k8s.io"
    sandbox_image: str = DEFAULT_SANDBOX_IMAGE
    # Pods that share no PID namespace and set no sysctls get no pause process: their namespaces are pinned
    # to files (runtime/cri/pod_namespaces.py). False: a pause process in every pod, as containerd does.
    drop_infra_container: bool = True
    snapshotter: str | None = None  # None: the runtime's default
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dirs: list[str] = Field(default_factory=lambda: ["/usr/lib/cni", "/opt/cni/bin"])
    # The streaming server (exec, attach, port-forward URLs): loopback and an ephemeral port by default.
    stream_address: str = "127.0.0.1"
    stream_port: int = Field(default=0, ge=0, le=65535)
