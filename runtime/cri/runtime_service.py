"""CRI RuntimeService: thin handlers over the pod, container, exec, stats and event parts."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Protocol

from cri_api.v1 import api_pb2 as cri
from cri_api.v1 import api_pb2_grpc

from runtime import __version__
from runtime.cri.containers import Containers
from runtime.cri.errors import Context, Unimplemented, rpc, stream_rpc
from runtime.cri.events import container_events
from runtime.cri.execsync import exec_sync
from runtime.cri.sandboxes import Sandboxes
from runtime.cri.state import CRIState
from runtime.cri.stats import container_stats, sandbox_stats
from runtime.cri.status import Views
from runtime.errors import InvalidArgument

CRI_API_VERSION = "v1"
RUNTIME_NAME = "pyruntimed"


class StreamURLs(Protocol):
    """The streaming server's side: one-time URLs for exec, attach and port-forward."""

    def exec_url(self, request: cri.ExecRequest) -> str: ...

    def attach_url(self, request: cri.AttachRequest) -> str: ...

    def port_forward_url(self, request: cri.PortForwardRequest) -> str: ...


class RuntimeServicer(api_pb2_grpc.RuntimeServiceServicer):
    def __init__(self, state: CRIState, streams: StreamURLs) -> None:
        self._s = state
        self._sandboxes = Sandboxes(state)
        self._containers = Containers(state, self._sandboxes)
        self._views = Views(state, self._sandboxes, self._containers)
        self._streams = streams

    @property
    def sandboxes(self) -> Sandboxes:
        return self._sandboxes

    @property
    def containers(self) -> Containers:
        return self._containers

    # runtime ----------------------------------------------------------------

    @rpc
    async def Version(self, request: cri.VersionRequest, context: Context) -> cri.VersionResponse:
        return cri.VersionResponse(version="0.1.0", runtime_name=RUNTIME_NAME, runtime_version=__version__,
                                   runtime_api_version=CRI_API_VERSION)

    @rpc
    async def Status(self, request: cri.StatusRequest, context: Context) -> cri.StatusResponse:
        reason = await self._s.network.not_ready()
        conditions = [
            cri.RuntimeCondition(type="RuntimeReady", status=True),
            cri.RuntimeCondition(type="NetworkReady", status=reason is None,
                                 reason="" if reason is None else "NetworkPluginNotReady",
                                 message=reason or ""),
        ]
        response = cri.StatusResponse(status=cri.RuntimeStatus(conditions=conditions))
        response.runtime_handlers.append(cri.RuntimeHandler(name="", features=cri.RuntimeHandlerFeatures()))
        response.runtime_handlers.append(cri.RuntimeHandler(name="runc", features=cri.RuntimeHandlerFeatures()))
        if request.verbose:
            config = self._s.config
            # Ours, with the keys of containerd's that tools read (kubeadm compares `sandboxImage` with its own).
            response.info["config"] = json.dumps({
                **config.model_dump(), "sandboxImage": config.sandbox_image,
                "containerd": {"snapshotter": config.snapshotter or "", "defaultRuntimeName": "runc"},
                "cni": {"binDir": config.cni_bin_dirs[0] if config.cni_bin_dirs else "",
                        "confDir": config.cni_conf_dir},
            })
            response.info["lastCNILoadStatus"] = reason or "OK"
        return response

    @rpc
    async def RuntimeConfig(self, request: cri.RuntimeConfigRequest, context: Context
                            ) -> cri.RuntimeConfigResponse:
        response = cri.RuntimeConfigResponse()
        response.linux.cgroup_driver = cri.CGROUPFS
        return response

    @rpc
    async def UpdateRuntimeConfig(self, request: cri.UpdateRuntimeConfigRequest, context: Context
                                  ) -> cri.UpdateRuntimeConfigResponse:
        # The kubelet sends the node's pod CIDR here; the CNI configuration owns addressing, as in containerd
        # when a conflist is present, so there is nothing to change.
        return cri.UpdateRuntimeConfigResponse()

    # sandboxes --------------------------------------------------------------

    @rpc
    async def RunPodSandbox(self, request: cri.RunPodSandboxRequest, context: Context
                            ) -> cri.RunPodSandboxResponse:
        sandbox_id = await self._sandboxes.run(request.config, request.runtime_handler)
        return cri.RunPodSandboxResponse(pod_sandbox_id=sandbox_id)

    @rpc
    async def StopPodSandbox(self, request: cri.StopPodSandboxRequest, context: Context
                             ) -> cri.StopPodSandboxResponse:
        await self._sandboxes.stop(request.pod_sandbox_id, self._containers)
        return cri.StopPodSandboxResponse()

    @rpc
    async def RemovePodSandbox(self, request: cri.RemovePodSandboxRequest, context: Context
                               ) -> cri.RemovePodSandboxResponse:
        await self._sandboxes.remove(request.pod_sandbox_id, self._containers, self._containers)
        return cri.RemovePodSandboxResponse()

    @rpc
    async def PodSandboxStatus(self, request: cri.PodSandboxStatusRequest, context: Context
                               ) -> cri.PodSandboxStatusResponse:
        record = self._s.sandboxes.get(request.pod_sandbox_id)
        return self._views.sandbox_status(record, request.verbose)

    @rpc
    async def ListPodSandbox(self, request: cri.ListPodSandboxRequest, context: Context
                             ) -> cri.ListPodSandboxResponse:
        f = request.filter if request.HasField("filter") else None
        return cri.ListPodSandboxResponse(items=self._views.sandboxes(f))

    @rpc
    async def PodSandboxStats(self, request: cri.PodSandboxStatsRequest, context: Context
                              ) -> cri.PodSandboxStatsResponse:
        record = self._s.sandboxes.get(request.pod_sandbox_id)
        return cri.PodSandboxStatsResponse(stats=await sandbox_stats(self._s, record))

    @rpc
    async def ListPodSandboxStats(self, request: cri.ListPodSandboxStatsRequest, context: Context
                                  ) -> cri.ListPodSandboxStatsResponse:
        f = request.filter
        records = self._views.sandbox_records(f.id, f.label_selector)
        return cri.ListPodSandboxStatsResponse(stats=[await sandbox_stats(self._s, r) for r in records])

    @rpc
    async def UpdatePodSandboxResources(self, request: cri.UpdatePodSandboxResourcesRequest,
                                        context: Context) -> cri.UpdatePodSandboxResourcesResponse:
        self._s.sandboxes.get(request.pod_sandbox_id)
        raise Unimplemented("updating a pod's own cgroup is not supported: update its containers' resources")

    # containers -------------------------------------------------------------

    @rpc
    async def CreateContainer(self, request: cri.CreateContainerRequest, context: Context
                              ) -> cri.CreateContainerResponse:
        container_id = await self._containers.create(request.pod_sandbox_id, request.config)
        return cri.CreateContainerResponse(container_id=container_id)

    @rpc
    async def StartContainer(self, request: cri.StartContainerRequest, context: Context
                             ) -> cri.StartContainerResponse:
        await self._containers.start(request.container_id)
        return cri.StartContainerResponse()

    @rpc
    async def StopContainer(self, request: cri.StopContainerRequest, context: Context
                            ) -> cri.StopContainerResponse:
        if request.timeout < 0:
            raise InvalidArgument("timeout must not be negative")
        await self._containers.stop(request.container_id, request.timeout)
        return cri.StopContainerResponse()

    @rpc
    async def RemoveContainer(self, request: cri.RemoveContainerRequest, context: Context
                              ) -> cri.RemoveContainerResponse:
        await self._containers.remove(request.container_id)
        return cri.RemoveContainerResponse()

    @rpc
    async def ListContainers(self, request: cri.ListContainersRequest, context: Context
                             ) -> cri.ListContainersResponse:
        f = request.filter if request.HasField("filter") else None
        return cri.ListContainersResponse(containers=self._views.containers(f))

    @rpc
    async def ContainerStatus(self, request: cri.ContainerStatusRequest, context: Context
                              ) -> cri.ContainerStatusResponse:
        record = self._s.cri_containers.get(request.container_id)
        return self._views.container_status(record, request.verbose)

    @rpc
    async def UpdateContainerResources(self, request: cri.UpdateContainerResourcesRequest,
                                       context: Context) -> cri.UpdateContainerResourcesResponse:
        await self._containers.update_resources(request.container_id, request.linux)
        return cri.UpdateContainerResourcesResponse()

    @rpc
    async def ReopenContainerLog(self, request: cri.ReopenContainerLogRequest, context: Context
                                 ) -> cri.ReopenContainerLogResponse:
        await self._containers.reopen_log(request.container_id)
        return cri.ReopenContainerLogResponse()

    @rpc
    async def ExecSync(self, request: cri.ExecSyncRequest, context: Context) -> cri.ExecSyncResponse:
        out, err, code = await exec_sync(self._s, request.container_id, list(request.cmd), request.timeout)
        return cri.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)

    @rpc
    async def Exec(self, request: cri.ExecRequest, context: Context) -> cri.ExecResponse:
        self._check_streamable(request.container_id, request.stdin, request.stdout, request.stderr, request.tty)
        if not request.cmd:
            raise InvalidArgument("exec needs a command")
        return cri.ExecResponse(url=self._streams.exec_url(request))

    @rpc
    async def Attach(self, request: cri.AttachRequest, context: Context) -> cri.AttachResponse:
        self._check_streamable(request.container_id, request.stdin, request.stdout, request.stderr, request.tty)
        return cri.AttachResponse(url=self._streams.attach_url(request))

    @rpc
    async def PortForward(self, request: cri.PortForwardRequest, context: Context
                          ) -> cri.PortForwardResponse:
        self._sandboxes.namespaces(self._s.sandboxes.get(request.pod_sandbox_id))
        return cri.PortForwardResponse(url=self._streams.port_forward_url(request))

    def _check_streamable(self, container_id: str, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
        record = self._s.cri_containers.get(container_id)
        if self._containers.state_of(record) != cri.CONTAINER_RUNNING:
            raise InvalidArgument(f"container {record.id} is not running")
        if not (stdin or stdout or stderr):
            raise InvalidArgument("one of stdin, stdout or stderr must be set")
        if tty and stderr:
            raise InvalidArgument("tty and stderr cannot both be set")

    # stats and events -------------------------------------------------------------

    @rpc
    async def ContainerStats(self, request: cri.ContainerStatsRequest, context: Context
                             ) -> cri.ContainerStatsResponse:
        record = self._s.cri_containers.get(request.container_id)
        return cri.ContainerStatsResponse(stats=await container_stats(self._s, record))

    @rpc
    async def ListContainerStats(self, request: cri.ListContainerStatsRequest, context: Context
                                 ) -> cri.ListContainerStatsResponse:
        f = request.filter
        records = self._views.container_records(f.id, f.pod_sandbox_id, f.label_selector)
        return cri.ListContainerStatsResponse(stats=[await container_stats(self._s, r) for r in records])

    @rpc
    async def ListMetricDescriptors(self, request: cri.ListMetricDescriptorsRequest,
                                    context: Context) -> cri.ListMetricDescriptorsResponse:
        return cri.ListMetricDescriptorsResponse(descriptors=[
            cri.MetricDescriptor(name="container_cpu_usage_seconds_total",
                                 help="Cumulative cpu time consumed by the container in core-seconds",
                                 label_keys=["id", "name", "image"]),
            cri.MetricDescriptor(name="container_memory_working_set_bytes",
                                 help="Current working set of the container in bytes",
                                 label_keys=["id", "name", "image"]),
        ])

    @rpc
    async def ListPodSandboxMetrics(self, request: cri.ListPodSandboxMetricsRequest,
                                    context: Context) -> cri.ListPodSandboxMetricsResponse:
        out = []
        for record in self._s.sandboxes.values():
            stats = await sandbox_stats(self._s, record)
            metrics = cri.PodSandboxMetrics(pod_sandbox_id=record.id)
            for c in stats.linux.containers:
                cm = cri.ContainerMetrics(container_id=c.attributes.id)
                labels = [c.attributes.id, c.attributes.metadata.name, ""]
                cm.metrics.append(cri.Metric(name="container_cpu_usage_seconds_total", timestamp=c.cpu.timestamp,
                                             metric_type=cri.COUNTER, label_values=labels,
                                             value=cri.UInt64Value(value=c.cpu.usage_core_nano_seconds.value // 10**9)))
                cm.metrics.append(cri.Metric(name="container_memory_working_set_bytes",
                                             timestamp=c.memory.timestamp, metric_type=cri.GAUGE,
                                             label_values=labels,
                                             value=cri.UInt64Value(value=c.memory.working_set_bytes.value)))
                metrics.container_metrics.append(cm)
            out.append(metrics)
        return cri.ListPodSandboxMetricsResponse(pod_metrics=out)

    @stream_rpc
    async def GetContainerEvents(self, request: cri.GetEventsRequest, context: Context
                                 ) -> AsyncIterator[cri.ContainerEventResponse]:
        async for event in container_events(self._s, self._views):
            yield event

    @rpc
    async def CheckpointContainer(self, request: cri.CheckpointContainerRequest, context: Context
                                  ) -> cri.CheckpointContainerResponse:
        self._s.cri_containers.get(request.container_id)
        raise Unimplemented("checkpointing containers is not supported by pyruntimed (no CRIU integration)")

