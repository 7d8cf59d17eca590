"""The CRI services through the generated Python gRPC client: every RPC, its errors and its idempotence."""
from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time

import aiohttp
import grpc
import pytest
from cri_api.v1 import api_pb2 as cri

from tests.fixtures.cri import CRI

pytestmark = pytest.mark.timeout(300)


def _code(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return excinfo.value.code()  # type: ignore[attr-defined,no-any-return]


def _wait_state(c: CRI, cid: str, state: int, timeout: float = 15) -> cri.ContainerStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = c.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=cid)).status
        if status.state == state or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_version_status_and_runtime_config(cri_service: CRI) -> None:
    v = cri_service.runtime.Version(cri.VersionRequest())
    assert (v.runtime_name, v.runtime_api_version) == ("pyruntimed", "v1")
    status = cri_service.runtime.Status(cri.StatusRequest(verbose=True))
    conditions = {c.type: c for c in status.status.conditions}
    assert conditions["RuntimeReady"].status
    config = json.loads(status.info["config"])
    assert config["sandboxImage"] == config["sandbox_image"] and "snapshotter" in config["containerd"]
    config = cri_service.runtime.RuntimeConfig(cri.RuntimeConfigRequest())
    assert config.linux.cgroup_driver == cri.CGROUPFS
    cri_service.runtime.UpdateRuntimeConfig(cri.UpdateRuntimeConfigRequest())


def test_images_pull_list_status_remove(cri_service: CRI) -> None:
    c = cri_service
    image_id = c.pull("busybox")
    assert image_id.startswith("sha256:")
    listed = c.images.ListImages(cri.ListImagesRequest()).images
    mine = next(i for i in listed if i.id == image_id)
    assert mine.repo_tags == ["docker.io/library/busybox:latest"]
    assert mine.repo_digests[0].startswith("docker.io/library/busybox@sha256:")
    assert mine.size > 0
    only = c.images.ListImages(cri.ListImagesRequest(filter=cri.ImageFilter(image=cri.ImageSpec(image="busybox"))))
    assert [i.id for i in only.images] == [image_id]
    for ref in ("busybox", "docker.io/library/busybox:latest", image_id, image_id[7:19]):
        status = c.images.ImageStatus(cri.ImageStatusRequest(image=cri.ImageSpec(image=ref), verbose=True))
        assert status.image.id == image_id, ref
    assert json.loads(status.info["info"])["id"] == image_id
    missing = c.images.ImageStatus(cri.ImageStatusRequest(image=cri.ImageSpec(image="nothere:1")))
    assert not missing.HasField("image")
    fs = c.images.ImageFsInfo(cri.ImageFsInfoRequest())
    assert len(fs.image_filesystems) == 1 and fs.image_filesystems[0].used_bytes.value > 0
    c.images.RemoveImage(cri.RemoveImageRequest(image=cri.ImageSpec(image=image_id)))
    assert all(i.id != image_id for i in c.images.ListImages(cri.ListImagesRequest()).images)
    # Idempotent: removing what is gone is no error.
    c.images.RemoveImage(cri.RemoveImageRequest(image=cri.ImageSpec(image=image_id)))


def test_pull_of_a_missing_image_is_not_found_with_the_registry_reason(cri_service: CRI) -> None:
    with pytest.raises(grpc.RpcError) as e:
        cri_service.pull("docker.io/library/nosuchimage:1.0")
    assert _code(e) == grpc.StatusCode.NOT_FOUND
    assert "nosuchimage" in e.value.details()  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as e:
        cri_service.pull("UPPER/Case::bad")
    assert _code(e) == grpc.StatusCode.INVALID_ARGUMENT


def test_pod_and_container_lifecycle(cri_service: CRI) -> None:
    c = cri_service
    c.pull("busybox")
    labels = {"app": "web"}
    pod_id, pod = c.run_pod("web", labels=labels, annotations={"a": "1"})
    status = c.runtime.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True))
    assert status.status.state == cri.SANDBOX_READY
    assert status.status.metadata.name == "web" and dict(status.status.labels) == labels
    assert json.loads(status.info["info"])["pid"] > 0
    # The same pod attempt cannot run twice.
    with pytest.raises(grpc.RpcError) as e:
        c.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pod))
    assert _code(e) == grpc.StatusCode.ALREADY_EXISTS

    cid = c.start_container(pod_id, pod, "main", ["sh", "-c", "echo out; echo err >&2; exec sleep 300"],
                            labels={"tier": "front"})
    running = _wait_state(c, cid, cri.CONTAINER_RUNNING)
    assert running.started_at > 0 and running.log_path.endswith("web/main.log")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "err" not in open(running.log_path).read():
        time.sleep(0.1)
    lines = open(running.log_path).read().splitlines()
    assert any(line.endswith(" stdout F out") for line in lines), lines
    assert any(line.endswith(" stderr F err") for line in lines), lines

    listed = c.runtime.ListContainers(cri.ListContainersRequest(filter=cri.ContainerFilter(
        pod_sandbox_id=pod_id, label_selector={"tier": "front"}))).containers
    assert [x.id for x in listed] == [cid]
    assert not c.runtime.ListContainers(cri.ListContainersRequest(filter=cri.ContainerFilter(
        state=cri.ContainerStateValue(state=cri.CONTAINER_EXITED)))).containers
    assert [p.id for p in c.runtime.ListPodSandbox(cri.ListPodSandboxRequest(filter=cri.PodSandboxFilter(
        label_selector=labels))).items] == [pod_id]

    out = c.runtime.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "echo hi; exit 3"]))
    assert (out.stdout, out.exit_code) == (b"hi\n", 3)
    with pytest.raises(grpc.RpcError) as e:
        c.runtime.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=["sleep", "30"], timeout=1))
    assert _code(e) == grpc.StatusCode.DEADLINE_EXCEEDED

    stats = c.runtime.ContainerStats(cri.ContainerStatsRequest(container_id=cid)).stats
    assert stats.attributes.id == cid and stats.memory.working_set_bytes.value > 0
    assert stats.memory.HasField("rss_bytes") and stats.memory.page_faults.value > 0
    assert stats.writable_layer.fs_id.mountpoint.endswith("overlayfs")
    assert c.runtime.ListContainerStats(cri.ListContainerStatsRequest()).stats
    pod_stats = c.runtime.PodSandboxStats(cri.PodSandboxStatsRequest(pod_sandbox_id=pod_id)).stats
    assert [x.attributes.id for x in pod_stats.linux.containers] == [cid]
    assert c.runtime.ListPodSandboxStats(cri.ListPodSandboxStatsRequest()).stats
    assert c.runtime.ListMetricDescriptors(cri.ListMetricDescriptorsRequest()).descriptors
    assert c.runtime.ListPodSandboxMetrics(cri.ListPodSandboxMetricsRequest()).pod_metrics

    c.runtime.UpdateContainerResources(cri.UpdateContainerResourcesRequest(
        container_id=cid, linux=cri.LinuxContainerResources(memory_limit_in_bytes=64 * 1024 * 1024)))
    os.rename(running.log_path, running.log_path + ".1")
    c.runtime.ReopenContainerLog(cri.ReopenContainerLogRequest(container_id=cid))
    deadline = time.monotonic() + 10
    while not os.path.exists(running.log_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.path.exists(running.log_path)

    with pytest.raises(grpc.RpcError) as e:
        c.runtime.CheckpointContainer(cri.CheckpointContainerRequest(container_id=cid))
    assert _code(e) == grpc.StatusCode.UNIMPLEMENTED

    c.runtime.StopContainer(cri.StopContainerRequest(container_id=cid, timeout=2))
    exited = _wait_state(c, cid, cri.CONTAINER_EXITED)
    assert exited.state == cri.CONTAINER_EXITED and exited.finished_at >= exited.started_at
    assert exited.exit_code in (137, 143) and exited.reason == "Error"
    c.runtime.StopContainer(cri.StopContainerRequest(container_id=cid, timeout=2))  # idempotent

    c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    status = c.runtime.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    assert status.state == cri.SANDBOX_NOTREADY
    with pytest.raises(grpc.RpcError) as e:
        c.runtime.CreateContainer(cri.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=c.container_config("late", ["true"]), sandbox_config=pod))
    assert _code(e) == grpc.StatusCode.FAILED_PRECONDITION
    c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))  # idempotent
    c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))  # idempotent
    assert not c.runtime.ListContainers(cri.ListContainersRequest()).containers
    # A new attempt of the same pod name is fine once the old one is gone.
    again, _ = c.run_pod("web")
    assert again != pod_id


def test_completed_container_reports_its_exit(cri_service: CRI) -> None:
    c = cri_service
    c.pull("busybox")
    pod_id, pod = c.run_pod("jobs")
    ok = c.start_container(pod_id, pod, "ok", ["true"])
    bad = c.start_container(pod_id, pod, "bad", ["sh", "-c", "exit 7"])
    assert _wait_state(c, ok, cri.CONTAINER_EXITED).reason == "Completed"
    status = _wait_state(c, bad, cri.CONTAINER_EXITED)
    assert (status.exit_code, status.reason) == (7, "Error")
    with pytest.raises(grpc.RpcError) as e:
        c.runtime.StartContainer(cri.StartContainerRequest(container_id=bad))
    assert _code(e) == grpc.StatusCode.FAILED_PRECONDITION


def test_unknown_ids_and_bad_requests(cri_service: CRI) -> None:
    r = cri_service.runtime
    unknown = "0" * 64
    for call, request in [
        (r.PodSandboxStatus, cri.PodSandboxStatusRequest(pod_sandbox_id=unknown)),
        (r.StopPodSandbox, cri.StopPodSandboxRequest(pod_sandbox_id=unknown)),
        (r.ContainerStatus, cri.ContainerStatusRequest(container_id=unknown)),
        (r.StartContainer, cri.StartContainerRequest(container_id=unknown)),
        (r.StopContainer, cri.StopContainerRequest(container_id=unknown)),
        (r.ExecSync, cri.ExecSyncRequest(container_id=unknown, cmd=["true"])),
        (r.ContainerStats, cri.ContainerStatsRequest(container_id=unknown)),
        (r.PodSandboxStats, cri.PodSandboxStatsRequest(pod_sandbox_id=unknown)),
        (r.Exec, cri.ExecRequest(container_id=unknown, cmd=["sh"], stdout=True)),
        (r.Attach, cri.AttachRequest(container_id=unknown, stdout=True)),
        (r.PortForward, cri.PortForwardRequest(pod_sandbox_id=unknown)),
        (r.CreateContainer, cri.CreateContainerRequest(pod_sandbox_id=unknown, config=cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name="x"), image=cri.ImageSpec(image="busybox")))),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            call(request)
        assert _code(e) == grpc.StatusCode.NOT_FOUND, call
    r.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=unknown))
    r.RemoveContainer(cri.RemoveContainerRequest(container_id=unknown))
    for call, request in [
        (r.ListPodSandbox, cri.ListPodSandboxRequest(filter=cri.PodSandboxFilter(
            state=cri.PodSandboxStateValue(state=9)))),
        (r.RunPodSandbox, cri.RunPodSandboxRequest(config=cri.PodSandboxConfig())),
        (r.RunPodSandbox, cri.RunPodSandboxRequest(config=cri_service.pod_config("h"), runtime_handler="kata")),
        (r.StopContainer, cri.StopContainerRequest(container_id=unknown, timeout=-1)),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            call(request)
        assert _code(e) == grpc.StatusCode.INVALID_ARGUMENT, request
    # An ID filter that is no ID matches nothing, as in containerd.
    assert not r.ListContainers(cri.ListContainersRequest(filter=cri.ContainerFilter(id="not-hex!"))).containers
    assert not r.ListPodSandbox(cri.ListPodSandboxRequest(filter=cri.PodSandboxFilter(id="XYZ"))).items


def test_what_containerd_reports_of_failures_updates_and_stopped_pods(cri_service: CRI) -> None:
    c = cri_service
    c.pull("busybox")
    pod_id, pod = c.run_pod("diffs")
    # A command that cannot start: ExecSync fails at once (no hang), StartContainer leaves the container EXITED.
    cid = c.start_container(pod_id, pod, "up", ["sleep", "60"])
    started = time.monotonic()
    with pytest.raises(grpc.RpcError):
        c.runtime.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=["/nonexistent"], timeout=5))
    assert time.monotonic() - started < 4
    reply = c.runtime.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "echo $TERM"]))
    assert reply.stdout == b"\n"  # no terminal, no TERM
    config = c.container_config("broken", ["/nonexistent"])
    broken = c.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                                  sandbox_config=pod)).container_id
    with pytest.raises(grpc.RpcError):
        c.runtime.StartContainer(cri.StartContainerRequest(container_id=broken))
    status = c.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=broken)).status
    assert (status.state, status.exit_code, status.reason) == (cri.CONTAINER_EXITED, 128, "StartError")
    assert "/nonexistent" in status.message and status.finished_at > 0
    # Updated resources are what the status shows; a memory limit alone means no swap.
    c.runtime.UpdateContainerResources(cri.UpdateContainerResourcesRequest(
        container_id=cid, linux=cri.LinuxContainerResources(cpu_shares=700, memory_limit_in_bytes=300 << 20)))
    linux = c.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=cid)).status.resources.linux
    assert (linux.cpu_shares, linux.memory_limit_in_bytes) == (700, 300 << 20)
    listed = c.runtime.ListContainers(cri.ListContainersRequest(filter=cri.ContainerFilter(id=cid))).containers
    assert listed[0].image.image == "busybox"  # as the config named it, as containerd lists it
    status = c.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=cid)).status
    assert (status.image.image, status.image.user_specified_image) == ("docker.io/library/busybox:latest", "busybox")
    c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    status = c.runtime.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    assert status.HasField("network") and status.network.ip == ""
    c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def test_container_events_stream(cri_service: CRI) -> None:
    c = cri_service
    c.pull("busybox")
    pod_id, pod = c.run_pod("events")
    stream = c.runtime.GetContainerEvents(cri.GetEventsRequest())
    received: queue.Queue[cri.ContainerEventResponse] = queue.Queue()

    def read() -> None:
        try:
            for event in stream:
                received.put(event)
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # The subscription starts on the server some time after the call: make events until one arrives.
    n = 0
    while received.empty():
        c.runtime.CreateContainer(cri.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=c.container_config(f"warm{n}", ["true"]), sandbox_config=pod))
        n += 1
        time.sleep(0.3)
    cid = c.start_container(pod_id, pod, "ev", ["true"])
    kinds: list[int] = []
    while cri.CONTAINER_STOPPED_EVENT not in kinds:
        event = received.get(timeout=30)
        if event.container_id == cid:
            kinds.append(event.container_event_type)
            assert event.pod_sandbox_status.id == pod_id
            assert event.containers_statuses[0].id == cid
    stream.cancel()
    reader.join(5)
    assert kinds[:2] == [cri.CONTAINER_CREATED_EVENT, cri.CONTAINER_STARTED_EVENT]
    assert kinds[-1] == cri.CONTAINER_STOPPED_EVENT


def test_exec_attach_port_forward_urls_stream_over_websocket(cri_service: CRI) -> None:
    c = cri_service
    c.pull("busybox")
    pod_id, pod = c.run_pod("urls")
    cid = c.start_container(pod_id, pod, "sh", ["sleep", "300"])
    url = c.runtime.Exec(cri.ExecRequest(container_id=cid, cmd=["sh", "-c", "cat; echo e >&2; exit 5"],
                                         stdin=True, stdout=True, stderr=True)).url
    assert url.startswith("http://127.0.0.1:") and "/exec/" in url
    attach = c.runtime.Attach(cri.AttachRequest(container_id=cid, stdout=True)).url
    assert "/attach/" in attach
    forward = c.runtime.PortForward(cri.PortForwardRequest(pod_sandbox_id=pod_id, port=[80])).url
    assert "/portforward/" in forward

    async def run() -> dict[int, bytes]:
        got: dict[int, bytes] = {}
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, protocols=("v5.channel.k8s.io",)) as ws:
                await ws.send_bytes(b"\x00" + b"over websocket\n")
                await ws.send_bytes(b"\xff\x00")  # v5: close stdin
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY and len(msg.data) > 1:
                        got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
        return got

    got = asyncio.run(run())
    assert got[1] == b"over websocket\n" and got[2] == b"e\n"
    assert json.loads(got[3])["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]
    # A URL is good for one use.
    async def reuse() -> int:
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                return response.status
    assert asyncio.run(reuse()) == 404

    for bad in (cri.ExecRequest(container_id=cid, cmd=["sh"]),
                cri.ExecRequest(container_id=cid, cmd=[], stdout=True),
                cri.ExecRequest(container_id=cid, cmd=["sh"], tty=True, stdout=True, stderr=True)):
        with pytest.raises(grpc.RpcError) as e:
            c.runtime.Exec(bad)
        assert _code(e) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as e:
        c.runtime.UpdatePodSandboxResources(cri.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pod_id))
    assert _code(e) == grpc.StatusCode.UNIMPLEMENTED
