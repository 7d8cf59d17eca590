"""docker stats: Docker's stats JSON from the runtime's cgroup metrics of a container's task.

Docker computes CPU percentages from two samples (cpu_stats and precpu_stats), so a
stream carries each sample's CPU numbers into the next one, one sample a second until
the container is removed; a single answer (`stream=false`) is a second sample a second after
the first, as dockerd's, unless `one-shot` asks for the first alone.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator
from typing import Any

from engine.containers.state import rfc3339
from engine.containers.store import Container, ContainerStore
from runtime import client as rt


_NEVER = "0001-01-01T00:00:00Z"  # Go's zero time
_INTERVAL = 1.0  # between samples, as dockerd's collector


class ContainerStats:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore) -> None:
        self._rt = runtime
        self._store = store

    async def once(self, c: Container, one_shot: bool = False) -> dict[str, Any]:
        """One answer (docker stats --no-stream): the second of two samples a second apart, so that the CPU
        percentage is of that second; with `one_shot` the first alone, with no previous one."""
        first = await self._sample(c, _empty_cpu(), _NEVER)
        if one_shot or not c.state.running:
            return first
        await asyncio.sleep(_INTERVAL)
        return await self._sample(self._store.get(c.id), first["cpu_stats"], first["read"])

    async def stream(self, c: Container) -> AsyncGenerator[dict[str, Any], None]:
        """A sample a second, each with the previous one's CPU numbers, until the container is removed. As
        dockerd's collector, a container that does not run gets an empty sample each second and its numbers
        again once it is started (`docker stats -a` shows stopped containers come back)."""
        previous, preread = _empty_cpu(), _NEVER
        while (current := self._store.find(c.id)) is not None:
            sample = await self._sample(current, previous, preread)
            previous, preread = sample["cpu_stats"], sample["read"]
            yield sample
            await asyncio.sleep(_INTERVAL)

    async def _sample(self, c: Container, previous: dict[str, Any], preread: str) -> dict[str, Any]:
        m: dict[str, Any] = {}
        if c.state.running:
            with contextlib.suppress(rt.RuntimeError_):
                m = (await self._rt.task_metrics(c.id)).model_dump()
        cpu = _cpu(m)
        if m:
            cpu["system_cpu_usage"] = await asyncio.to_thread(_system_cpu_ns)
            cpu["online_cpus"] = os.cpu_count() or 1
        networks = {}
        if m and c.state.pid and c.host_config.get("NetworkMode") != "host":
            networks = await asyncio.to_thread(_network_stats, c.state.pid)
        return {
            "read": rfc3339(time.time()) if m else _NEVER,
            "preread": preread,
            "id": c.id,
            "name": "/" + c.name,
            "pids_stats": {k: m[f] for k, f in (("current", "pids_current"), ("limit", "pids_limit")) if m.get(f)},
            "cpu_stats": cpu,
            "precpu_stats": previous,
            "memory_stats": _memory(m) if m else {},
            "blkio_stats": {key: (m.get("blkio") or {}).get(name) for key, name in _BLKIO},
            "num_procs": 0,
            "storage_stats": {},
            # Left out without interfaces (no network, the host's), as dockerd's omitempty leaves it out.
            **({"networks": networks} if networks else {}),
        }


# dockerd's blkio_stats keys and the cgroup v1 files they come from; null where the host's cgroups have no such
# file (v2 counts bytes only, from io.stat).
_BLKIO = (("io_service_bytes_recursive", "io_service_bytes_recursive"),
          ("io_serviced_recursive", "io_serviced_recursive"), ("io_queue_recursive", "io_queued_recursive"),
          ("io_service_time_recursive", "io_service_time_recursive"),
          ("io_wait_time_recursive", "io_wait_time_recursive"), ("io_merged_recursive", "io_merged_recursive"),
          ("io_time_recursive", "io_time_recursive"), ("sectors_recursive", "sectors_recursive"))


def _cpu(m: dict[str, Any]) -> dict[str, Any]:
    usage: dict[str, Any] = {"total_usage": m.get("cpu_usage_ns") or 0}
    if m.get("cpu_percpu_ns"):
        usage["percpu_usage"] = m["cpu_percpu_ns"]
    usage["usage_in_kernelmode"] = m.get("cpu_system_ns") or 0
    usage["usage_in_usermode"] = m.get("cpu_user_ns") or 0
    return {"cpu_usage": usage, "throttling_data": {"periods": m.get("cpu_periods") or 0,
                                                    "throttled_periods": m.get("cpu_throttled_periods") or 0,
                                                    "throttled_time": m.get("cpu_throttled_ns") or 0}}


def _memory(m: dict[str, Any]) -> dict[str, Any]:
    """dockerd's memory_stats, its omitempty fields left out when zero."""
    out: dict[str, Any] = {"usage": m.get("memory_usage") or 0}
    if m.get("memory_max_usage"):
        out["max_usage"] = m["memory_max_usage"]
    if m.get("memory_stat"):
        out["stats"] = m["memory_stat"]
    if m.get("memory_failcnt"):
        out["failcnt"] = m["memory_failcnt"]
    out["limit"] = _memory_limit(m.get("memory_limit"))
    return out


def _empty_cpu() -> dict[str, Any]:
    """The CPU numbers before a first sample: Go's zero values, the omitempty ones left out, as dockerd's."""
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def _network_stats(pid: int) -> dict[str, dict[str, int]]:
    """Each interface of the process's network namespace but loopback, with the counters dockerd reports."""
    try:
        with open(f"/proc/{pid}/net/dev") as fh:
            lines = fh.read().splitlines()[2:]
    except OSError:
        return {}  # the process is gone
    out = {}
    for line in lines:
        name, _, counters = line.partition(":")
        n = [int(x) for x in counters.split()]
        if name.strip() == "lo" or len(n) < 12:
            continue
        out[name.strip()] = {"rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                             "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11]}
    return out


def _memory_limit(limit: int | None) -> int:
    """dockerd's: a container without a limit (or one above the machine's memory) is limited by the machine."""
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # /info's MemTotal
    return machine if limit is None or limit > machine else limit


def _system_cpu_ns() -> int:
    """Host CPU time in ns, as Docker reports system_cpu_usage (from /proc/stat's cpu line)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:8]
    return sum(int(x) for x in fields) * 10**9 // os.sysconf("SC_CLK_TCK")
