"""Cgroup limits (OCI `linux.resources` memory, cpu, pids, blockIO) with Docker's checks.

Separate from the rest of spec generation because limits have two callers: a new
container's spec and a live task's update, which must apply exactly the same rules.
"""
from __future__ import annotations

import os
import re
from typing import Any

from runtime import sysinfo
from runtime.errors import InvalidArgument
from runtime.tasks import cgroups
from runtime.tasks.spec_options import ResourceOptions

# Docker refuses smaller limits: the runtime itself would not fit.
MIN_MEMORY = 6 * 1024 * 1024
_CPU_PERIOD = 100_000

_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def _memory(opts: ResourceOptions) -> dict[str, int]:
    out: dict[str, int] = {}
    memory = opts.memory or 0
    if memory < 0:
        raise InvalidArgument(f"invalid memory limit {memory}")
    if memory and memory < MIN_MEMORY:
        raise InvalidArgument("minimum memory limit allowed is 6MB")
    if memory:
        out["limit"] = memory
    reservation = opts.memory_reservation or 0
    if reservation < 0:
        raise InvalidArgument(f"invalid memory reservation {reservation}")
    if reservation:
        if memory and reservation > memory:
            raise InvalidArgument("minimum memory limit can not be less than memory reservation limit")
        out["reservation"] = reservation
    swap = opts.memory_swap or 0
    if swap:
        if not memory:
            raise InvalidArgument("you should always set the memory limit when using a memoryswap limit")
        if swap != -1 and swap < memory:
            raise InvalidArgument("minimum memoryswap limit should be larger than memory limit")
        if not cgroups.swap_limit_supported():
            raise InvalidArgument("this host's kernel does not account swap: memory_swap cannot be set")
        out["swap"] = swap
    elif memory and cgroups.swap_limit_supported():
        out["swap"] = 2 * memory  # Docker's default: as much swap as memory
    return out


def _cpu(opts: ResourceOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if opts.cpu_shares:
        if opts.cpu_shares < 0:
            raise InvalidArgument(f"invalid cpu shares {opts.cpu_shares}")
        out["shares"] = opts.cpu_shares
    ncpu = os.cpu_count() or 1
    if opts.nano_cpus:
        if opts.cpu_quota or opts.cpu_period:
            raise InvalidArgument("conflicting options: nano_cpus cannot be set with cpu_quota or cpu_period")
        if not 10_000_000 <= opts.nano_cpus <= ncpu * 1_000_000_000:
            raise InvalidArgument(f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
        out["quota"] = opts.nano_cpus * _CPU_PERIOD // 1_000_000_000
        out["period"] = _CPU_PERIOD
    if opts.cpu_period:
        if not 1000 <= opts.cpu_period <= 1_000_000:
            raise InvalidArgument("cpu_period must be between 1000 and 1000000 microseconds")
        out["period"] = opts.cpu_period
    if opts.cpu_quota:
        if opts.cpu_quota != -1 and opts.cpu_quota < 1000:
            raise InvalidArgument("cpu_quota cannot be less than 1ms (1000)")
        out["quota"] = opts.cpu_quota
    if opts.cpuset_cpus:
        if not _CPUSET_RE.match(opts.cpuset_cpus):
            raise InvalidArgument(f"invalid cpuset_cpus {opts.cpuset_cpus!r}")
        numbers = [int(n) for n in re.split(r"[-,]", opts.cpuset_cpus)]
        if max(numbers) >= ncpu:
            raise InvalidArgument(f"requested CPUs are not available: {opts.cpuset_cpus} (this host has 0-{ncpu - 1})")
        out["cpus"] = opts.cpuset_cpus
    if opts.cpuset_mems:
        if not _CPUSET_RE.match(opts.cpuset_mems):
            raise InvalidArgument(f"invalid cpuset_mems {opts.cpuset_mems!r}")
        online = _memory_nodes()
        if not _within(_ranges(opts.cpuset_mems), _ranges(online)):
            raise InvalidArgument(f"requested memory nodes are not available: {opts.cpuset_mems} "
                                  f"(this host has {online})")
        out["mems"] = opts.cpuset_mems
    return out


def _ranges(text: str) -> list[tuple[int, int]]:
    """"0-2,5" -> [(0, 2), (5, 5)]: compared as ranges, so "0-99999999999" costs nothing."""
    out = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        out.append((int(first), int(last or first)))
    return out


def _within(asked: list[tuple[int, int]], online: list[tuple[int, int]]) -> bool:
    """Every asked range inside one online range (the kernel lists online ranges merged)."""
    return all(any(lo <= a and b <= hi for lo, hi in online) for a, b in asked)


def _memory_nodes() -> str:
    try:
        with open("/sys/devices/system/node/online", encoding="ascii") as fh:
            return fh.read().strip() or "0"
    except OSError:
        return "0"  # a kernel without NUMA support has the one node


# The keys of OCI `linux.resources` that linux_resources() sets.
LIMITS = ("memory", "cpu", "pids", "blockIO")


def linux_resources(opts: ResourceOptions) -> dict[str, Any]:
    """The OCI `linux.resources` limits (memory, cpu, pids, blockIO) for `opts`; device rules are not limits."""
    res: dict[str, Any] = {}
    if memory := _memory(opts):
        res["memory"] = memory
    if cpu := _cpu(opts):
        res["cpu"] = cpu
    if opts.pids_limit and opts.pids_limit > 0:
        res["pids"] = {"limit": opts.pids_limit}
    if opts.blkio_weight:
        if not 10 <= opts.blkio_weight <= 1000:
            raise InvalidArgument("blkio_weight must be between 10 and 1000")
        if not sysinfo.probe().blkio_weight:
            # runc would fail on the missing file with an error that names no option.
            raise InvalidArgument("blkio_weight: this host's kernel cannot weigh block I/O (no blkio.weight)")
        res["blockIO"] = {"weight": opts.blkio_weight}
    return res
