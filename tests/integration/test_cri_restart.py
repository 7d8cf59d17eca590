"""kill -9 of pyruntimed with pods running: they keep running, and the CRI tells the truth after the restart."""
from __future__ import annotations

import json
import os
import time

import grpc
import pytest
from cri_api.v1 import api_pb2 as cri

from tests.fixtures.cri import CRI

pytestmark = pytest.mark.timeout(300)


def _state(c: CRI, cid: str) -> cri.ContainerStatus:
    return c.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=cid)).status


def test_pods_survive_a_killed_runtime(cri_service: CRI) -> None:
    c = cri_service
    c.pull("busybox")
    pods = []
    for i in range(5):
        # Odd pods as the kubelet sends a pod without shareProcessNamespace: no pause process, pinned namespaces.
        pod = c.pod_config(f"survivor{i}")
        config = c.container_config("main", ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"])
        if i % 2:
            pod.linux.security_context.namespace_options.pid = cri.CONTAINER
            config.linux.security_context.namespace_options.pid = cri.CONTAINER
        pod_id = c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pod)).pod_sandbox_id
        cid = c.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                                   sandbox_config=pod)).container_id
        c.runtime.StartContainer(cri.StartContainerRequest(container_id=cid))
        pods.append((pod_id, pod, cid))
    pids = {}
    for pod_id, _, cid in pods:
        status = c.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=cid, verbose=True))
        pids[cid] = json.loads(status.info["info"])["pid"]
    doomed_pid = pids[pods[0][2]]

    c.daemon.kill9()
    # While the runtime is down: every container still runs; one of them ends with a code of its own.
    for pid in pids.values():
        os.kill(pid, 0)
    os.kill(doomed_pid, 9)
    c.daemon.start()

    ids = {p.id for p in c.runtime.ListPodSandbox(cri.ListPodSandboxRequest()).items}
    assert ids == {p for p, _, _ in pods}
    for pod_id, _, _ in pods:
        status = c.runtime.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
        assert status.state == cri.SANDBOX_READY
    deadline = time.monotonic() + 15
    while _state(c, pods[0][2]).state != cri.CONTAINER_EXITED and time.monotonic() < deadline:
        time.sleep(0.1)
    dead = _state(c, pods[0][2])
    assert (dead.state, dead.exit_code, dead.reason) == (cri.CONTAINER_EXITED, 137, "Error")
    for _, _, cid in pods[1:]:
        assert _state(c, cid).state == cri.CONTAINER_RUNNING
        out = c.runtime.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=["echo", "back"]))
        assert out.stdout == b"back\n"
    # Names stay reserved across the restart: the same attempt cannot be run twice.
    with pytest.raises(grpc.RpcError):
        c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pods[1][1]))
    for pod_id, _, _ in pods:
        c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
