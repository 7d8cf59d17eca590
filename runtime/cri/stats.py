"""Container and pod stats from the tasks' cgroups, in the CRI's shapes."""
from __future__ import annotations

import time

from cri_api.v1 import api_pb2 as cri

from runtime.cri.records import ContainerRecord, SandboxRecord
from runtime.cri.scope import in_namespace
from runtime.cri.state import CRIState
from runtime.errors import FailedPrecondition, NotFound
from runtime.tasks.cgroups import Metrics


async def _metrics(state: CRIState, container_id: str) -> Metrics | None:
    with in_namespace(state.namespace):
        try:
            return await state.tasks.metrics(container_id)
        except (NotFound, FailedPrecondition):
            return None


def _fill(cpu: cri.CpuUsage, memory: cri.MemoryUsage, m: Metrics | None, stamp: int) -> None:
    cpu.timestamp = stamp
    memory.timestamp = stamp
    if m is None:
        return
    if m.cpu_usage_ns is not None:
        cpu.usage_core_nano_seconds.value = m.cpu_usage_ns
    if m.memory_usage is not None:
        working_set = max(0, m.memory_usage - (m.memory_inactive_file or 0))
        memory.working_set_bytes.value = working_set
        memory.usage_bytes.value = m.memory_usage
        # containerd's: 0 available without a limit.
        memory.available_bytes.value = max(0, m.memory_limit - working_set) if m.memory_limit is not None else 0
    # As containerd reads them: the hierarchy's totals on v1, the cgroup's own counters on v2.
    stat = m.memory_stat
    for field, names in (("rss_bytes", ("total_rss", "anon")), ("page_faults", ("total_pgfault", "pgfault")),
                         ("major_page_faults", ("total_pgmajfault", "pgmajfault"))):
        if (value := next((stat[n] for n in names if n in stat), None)) is not None:
            getattr(memory, field).value = value


async def container_stats(state: CRIState, record: ContainerRecord) -> cri.ContainerStats:
    config = record.container_config()
    stamp = time.time_ns()
    stats = cri.ContainerStats()
    stats.attributes.CopyFrom(cri.ContainerAttributes(id=record.id, metadata=config.metadata, labels=config.labels,
                                                      annotations=config.annotations))
    _fill(stats.cpu, stats.memory, await _metrics(state, record.id), stamp)
    stats.writable_layer.timestamp = stamp
    with in_namespace(state.namespace):
        try:
            c = await state.containers.store.get(record.id)
            service = state.snapshots[c.snapshotter]
            usage = await service.usage(c.snapshot_key)
        except (NotFound, KeyError):
            return stats
    stats.writable_layer.fs_id.mountpoint = str(getattr(service.backend, "root", ""))
    stats.writable_layer.used_bytes.value = usage.size
    stats.writable_layer.inodes_used.value = usage.inodes
    return stats


async def sandbox_stats(state: CRIState, record: SandboxRecord) -> cri.PodSandboxStats:
    config = record.pod_config()
    stamp = time.time_ns()
    stats = cri.PodSandboxStats()
    stats.attributes.CopyFrom(cri.PodSandboxAttributes(id=record.id, metadata=config.metadata, labels=config.labels,
                                                       annotations=config.annotations))
    members = [await container_stats(state, c) for c in state.containers_of(record.id)]
    pause = await _metrics(state, record.id)
    linux = stats.linux
    _fill(linux.cpu, linux.memory, pause, stamp)
    total_cpu = sum(c.cpu.usage_core_nano_seconds.value for c in members)
    total_mem = sum(c.memory.working_set_bytes.value for c in members)
    linux.cpu.usage_core_nano_seconds.value += total_cpu
    linux.memory.working_set_bytes.value += total_mem
    linux.containers.extend(members)
    linux.process.timestamp = stamp
    if pause is not None and pause.pids_current is not None:
        linux.process.process_count.value = pause.pids_current
    return stats
