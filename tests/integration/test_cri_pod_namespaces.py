"""Pods without a pause process: their IPC and UTS namespaces pinned to files (runtime/cri/pod_namespaces.py).

A pod that shares no PID namespace (the kubelet's CONTAINER mode, unless shareProcessNamespace) and sets no
sysctls gets none; its containers still share the pod's network, IPC and UTS namespaces and hostname, and a
stopped pod lets them go.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import pytest
from cri_api.v1 import api_pb2 as cri

from tests.fixtures.cri import CRI, _serve, cri_daemon
from tests.fixtures.registry import Registry

pytestmark = pytest.mark.timeout(300)


def _sh(c: CRI, cid: str, script: str) -> str:
    out = c.runtime.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script], timeout=20))
    assert out.exit_code == 0, (script, out.stdout, out.stderr)
    return out.stdout.decode().strip()


def _info(c: CRI, pod_id: str) -> dict:
    status = c.runtime.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True))
    return json.loads(status.info["info"])


def _own_pid(config: cri.PodSandboxConfig | cri.ContainerConfig) -> cri.PodSandboxConfig | cri.ContainerConfig:
    """As the kubelet sends a pod (and its containers) without shareProcessNamespace."""
    config.linux.security_context.namespace_options.pid = cri.CONTAINER
    return config


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_a_pod_without_a_pause_process_shares_its_namespaces(cri_pod_network: CRI) -> None:
    c = cri_pod_network
    c.pull("busybox")
    pod = _own_pid(c.pod_config("pinned", host_network=False))
    pod.hostname = "pinned-pod"
    pod_id = c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pod)).pod_sandbox_id
    info = _info(c, pod_id)
    assert info["pid"] == 0 and info["processStatus"] == "none"
    pins = info["pinnedNamespaces"]
    assert sorted(pins) == ["ipc", "uts"] and all(_mounted(p) for p in pins.values())

    first, second = (c.runtime.CreateContainer(cri.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=_own_pid(c.container_config(name, ["sleep", "300"])), sandbox_config=pod)
    ).container_id for name in ("first", "second"))
    for cid in (first, second):
        c.runtime.StartContainer(cri.StartContainerRequest(container_id=cid))
    assert _sh(c, first, "hostname") == _sh(c, second, "hostname") == "pinned-pod"
    for kind in ("net", "ipc", "uts"):
        theirs = _sh(c, first, f"readlink /proc/self/ns/{kind}")
        assert theirs == _sh(c, second, f"readlink /proc/self/ns/{kind}")
        assert theirs != os.readlink(f"/proc/self/ns/{kind}"), kind
    assert _sh(c, first, "readlink /proc/self/ns/pid") != _sh(c, second, "readlink /proc/self/ns/pid")
    _sh(c, first, "echo shared > /dev/shm/mark")
    assert _sh(c, second, "cat /dev/shm/mark") == "shared"
    listed = c.runtime.ListPodSandbox(cri.ListPodSandboxRequest()).items
    assert [p.state for p in listed if p.id == pod_id] == [cri.SANDBOX_READY]

    c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    status = c.runtime.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    assert status.state == cri.SANDBOX_NOTREADY
    assert not any(_mounted(p) for p in pins.values())
    with pytest.raises(grpc.RpcError) as refused:
        c.runtime.CreateContainer(cri.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=c.container_config("late", ["true"]), sandbox_config=pod))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def test_pods_that_need_a_pause_process_get_one(cri_service: CRI) -> None:
    c = cri_service
    c.pull("busybox")
    pinned = _own_pid(c.pod_config("no-pause"))
    pinned_id = c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pinned)).pod_sandbox_id
    assert _info(c, pinned_id)["processStatus"] == "none"
    # A container may not ask for a PID namespace the pod does not share.
    config = c.container_config("joins-pid", ["sleep", "300"])
    config.linux.security_context.namespace_options.pid = cri.POD
    with pytest.raises(grpc.RpcError) as refused:
        c.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pinned_id, config=config,
                                                             sandbox_config=pinned))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "PID namespace" in refused.value.details()

    shared_pid = c.pod_config("shared-pid")  # pid POD: the proto's zero value
    with_sysctl = _own_pid(c.pod_config("sysctl"))
    with_sysctl.linux.sysctls["kernel.shm_rmid_forced"] = "1"
    for pod in (shared_pid, with_sysctl):
        pod_id = c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pod)).pod_sandbox_id
        info = _info(c, pod_id)
        assert info["pid"] > 0 and info["processStatus"] == "running" and info["pinnedNamespaces"] == {}
    cid = c.runtime.CreateContainer(cri.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=_own_pid(c.container_config("ipc", ["sleep", "300"])),
        sandbox_config=with_sysctl)).container_id
    c.runtime.StartContainer(cri.StartContainerRequest(container_id=cid))
    assert _sh(c, cid, "cat /proc/sys/kernel/shm_rmid_forced") == "1"


def test_drop_infra_container_false_gives_every_pod_a_pause_process(tmp_path: Path, registry: Registry) -> None:
    serving = _serve(cri_daemon(str(tmp_path), registry, "[cri]\ndrop_infra_container = false\n"))
    c = next(serving)
    try:
        pod_id = c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(
            config=_own_pid(c.pod_config("always-pause")))).pod_sandbox_id
        info = _info(c, pod_id)
        assert info["pid"] > 0 and info["processStatus"] == "running" and info["pinnedNamespaces"] == {}
    finally:
        serving.close()


def test_a_pod_without_a_hostname_takes_the_nodes(cri_pod_network: CRI) -> None:
    """As containerd: in its files, its UTS namespace and its containers' $HOSTNAME, pause process or not."""
    c = cri_pod_network
    c.pull("busybox")
    node = os.uname().nodename
    for name, shared_pid in (("anon-pinned", False), ("anon-paused", True)):
        pod = c.pod_config(name, host_network=False)
        pod.hostname = ""
        pod.linux.security_context.namespace_options.pid = cri.POD if shared_pid else cri.CONTAINER
        pod_id = c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pod)).pod_sandbox_id
        config = c.container_config("app", ["sleep", "60"])
        config.linux.security_context.namespace_options.pid = cri.POD if shared_pid else cri.CONTAINER
        cid = c.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                                   sandbox_config=pod)).container_id
        c.runtime.StartContainer(cri.StartContainerRequest(container_id=cid))
        assert _sh(c, cid, 'hostname; cat /etc/hostname; echo "$HOSTNAME"').split() == [node] * 3, name
        c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
