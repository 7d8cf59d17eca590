"""Docker's Resources: which limits an update changes, Docker's checks on them (at create and update), and the
runtime's resource options.

Docker's update only ever sets: a zero, empty or missing field leaves the current
value alone (PidsLimit alone is a pointer: present means set, and 0 or -1 lift the
limit). The checks run on the merged result with dockerd's messages, which clients
show as they are, create's too.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.containers.gotypes import OPEN, Int64
from engine.containers.hostlimits import KERNEL_MEMORY_WARNING, MAX_CPU_SHARES, MIN_CPU_SHARES
from engine.containers.request import RestartPolicyModel
from engine.errors import Conflict, InvalidArgument

MIN_MEMORY = 6 * 1024 * 1024
_RESTART_POLICIES = {"no", "always", "unless-stopped", "on-failure"}
# Fields the CLI sends (zeroed) that this engine cannot change on a container: refused when set, but for kernel
# memory, which dockerd 23 and later ignore with a warning too (the kernel dropped it).
_IGNORED = ("KernelMemory", "KernelMemoryTCP")
_UNSUPPORTED = ("CpuRealtimePeriod", "CpuRealtimeRuntime", "CpuCount",
                "CpuPercent", "MemorySwappiness", "OomKillDisable", "BlkioWeightDevice", "BlkioDeviceReadBps",
                "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "Devices",
                "DeviceCgroupRules", "DeviceRequests", "Ulimits", "IOMaximumIOps", "IOMaximumBandwidth")
_SET_IF_NONZERO = ("Memory", "MemoryReservation", "MemorySwap", "NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota",
                   "CpusetCpus", "CpusetMems", "BlkioWeight")


class UpdateRequest(BaseModel):
    """Docker's Resources plus RestartPolicy; the CLI sends the whole struct, mostly zeros."""

    # Typed as create types the same HostConfig fields: a value create refuses must not come in this way.
    model_config = OPEN
    Memory: Int64 | None = None
    MemoryReservation: Int64 | None = None
    MemorySwap: Int64 | None = None
    NanoCpus: Int64 | None = None
    CpuShares: Int64 | None = None
    CpuPeriod: Int64 | None = None
    CpuQuota: Int64 | None = None
    CpusetCpus: str | None = None
    CpusetMems: str | None = None
    PidsLimit: Int64 | None = None
    BlkioWeight: Int64 | None = None
    RestartPolicy: RestartPolicyModel | None = None


def merged(host_config: dict[str, Any], req: UpdateRequest) -> tuple[dict[str, Any], list[str]]:
    """The HostConfig after the update, and the warnings for what was asked but cannot be done here."""
    hc = dict(host_config)
    _check_conflicts(hc, req)
    for key in _SET_IF_NONZERO:
        value = getattr(req, key)
        if value:
            hc[key] = value
    if req.PidsLimit is not None:
        hc["PidsLimit"] = max(req.PidsLimit, 0)  # dockerd keeps any "unlimited" as 0
    policy = req.RestartPolicy
    if policy is not None and policy.Name:
        if hc.get("AutoRemove") and (policy.Name or "no") != "no":
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
        hc["RestartPolicy"] = restart_policy(policy)
    extra = req.model_extra or {}
    if refused := [key for key in _UNSUPPORTED if extra.get(key)]:
        raise InvalidArgument(f"{', '.join(refused)} cannot be updated on this engine")
    # dockerd checks the update's own limits, then how its memory limit sits with the swap limit already set:
    # none (0) or unlimited (-1) is below any, so a container made without one takes a memory limit only with a
    # swap limit beside it.
    check_limits({key: getattr(req, key) for key in _SET_IF_NONZERO}, update=True)
    if req.Memory and req.Memory > (host_config.get("MemorySwap") or 0) and not req.MemorySwap:
        raise Conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at "
                       "the same time")
    check_limits(hc, merged=True)
    return hc, [KERNEL_MEMORY_WARNING if key == "KernelMemory" else f"{key} cannot be updated on this engine and was "
                "ignored" for key in _IGNORED if extra.get(key)]


def _check_conflicts(hc: dict[str, Any], req: UpdateRequest) -> None:
    """What an update cannot combine with the values already set (dockerd's wording)."""
    if req.NanoCpus and hc.get("CpuQuota") and not req.CpuQuota:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if req.NanoCpus and hc.get("CpuPeriod") and not req.CpuPeriod:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if (req.CpuQuota or req.CpuPeriod) and hc.get("NanoCpus") and not req.NanoCpus:
        which = "CPU Quota" if req.CpuQuota else "CPU Period"
        raise Conflict(f"Conflicting options: {which} cannot be updated as NanoCPUs has already been set")


def check_limits(hc: dict[str, Any], update: bool = False, merged: bool = False) -> None:
    """dockerd's checks of a HostConfig's limits, in its words (a create's after the kernel's discards); an
    `update`'s own values may set a swap limit alone (the memory limit is the container's). The `merged` values of
    an update may keep a reservation over the limit: dockerd checks the two together only when both are sent."""
    memory, reservation, swap = hc.get("Memory") or 0, hc.get("MemoryReservation") or 0, hc.get("MemorySwap") or 0
    if 0 < memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if 0 < reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > memory and not merged:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")
    if swap > 0 and not memory and not update:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    nano = hc.get("NanoCpus") or 0
    for key, name in (("CpuPeriod", "CPU Period"), ("CpuQuota", "CPU Quota")):
        if nano and hc.get(key):
            raise InvalidArgument(f"Conflicting options: Nano CPUs and {name} cannot both be set")
    ncpu = os.cpu_count() or 1
    if nano and not 10_000_000 <= nano <= ncpu * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    period = hc.get("CpuPeriod") or 0
    if period and not 1000 <= period <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    quota = hc.get("CpuQuota") or 0
    if 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    shares = hc.get("CpuShares") or 0
    if shares and not MIN_CPU_SHARES <= shares <= MAX_CPU_SHARES:
        raise InvalidArgument(f"Range of CPU shares is from {MIN_CPU_SHARES} to {MAX_CPU_SHARES}")
    weight = hc.get("BlkioWeight") or 0
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    _check_cpuset(hc.get("CpusetCpus") or "", "cpuset cpus", "Requested CPUs", f"0-{ncpu - 1}" if ncpu > 1 else "0")
    _check_cpuset(hc.get("CpusetMems") or "", "cpuset mems", "Requested memory nodes", _memory_nodes())


_UINT_LIST = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def _check_cpuset(value: str, what: str, subject: str, available: str) -> None:
    if not value:
        return
    if not _UINT_LIST.match(value):
        raise InvalidArgument(f"Invalid value {value} for {what}: invalid format: {value}")
    have = _ranges(available)
    for first, last in _ranges(value):
        if first > last:
            raise InvalidArgument(f"Invalid value {value} for {what}: invalid range: {first}-{last}")
        if not any(lo <= first and last <= hi for lo, hi in have):
            raise InvalidArgument(f"{subject} are not available - requested {value}, available: {available}")


def _ranges(text: str) -> list[tuple[int, int]]:
    """"0-2,5" -> [(0, 2), (5, 5)]."""
    return [(int(first), int(last or first)) for first, _, last in (p.partition("-") for p in text.split(","))]


def _memory_nodes() -> str:
    try:
        return Path("/sys/devices/system/node/online").read_text().strip() or "0"
    except OSError:
        return "0"


def restart_policy(policy: RestartPolicyModel) -> dict[str, Any]:
    """A checked RestartPolicy, as HostConfig stores it."""
    name, retries = policy.Name or "no", policy.MaximumRetryCount or 0
    if name not in _RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if retries < 0:
        raise InvalidArgument("maximum retry count cannot be negative")
    if retries and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    return {"Name": name, "MaximumRetryCount": retries}


def runtime_resources(hc: dict[str, Any]) -> dict[str, Any]:
    """The runtime's resource options (SpecOptions' limit fields) for a stored HostConfig."""
    return {
        "memory": hc.get("Memory") or None,
        "memory_reservation": hc.get("MemoryReservation") or None,
        "memory_swap": hc.get("MemorySwap") or None,
        "cpu_shares": hc.get("CpuShares") or None,
        "cpu_quota": hc.get("CpuQuota") or None,
        "cpu_period": hc.get("CpuPeriod") or None,
        "nano_cpus": hc.get("NanoCpus") or None,
        "cpuset_cpus": hc.get("CpusetCpus") or None,
        "cpuset_mems": hc.get("CpusetMems") or None,
        # 0 and -1 both lift the limit; only a missing one leaves it alone.
        "pids_limit": hc.get("PidsLimit"),
        "blkio_weight": hc.get("BlkioWeight") or None,
    }
