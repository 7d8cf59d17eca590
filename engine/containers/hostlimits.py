"""Limits the host's kernel cannot apply: discarded with dockerd's warnings, as dockerd does.

The runtime probes the kernel once (GET /sysinfo); a create or update that asks for a
limit the kernel lacks (no `blkio.weight` without the BFQ/CFQ scheduler, no swap
accounting, ...) keeps running without it, and the client is told so in `Warnings`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from engine.errors import InvalidArgument
from runtime.client import RuntimeAPI

# The kernel's bounds on cgroup v1 cpu.shares, which runc refuses to go past on either cgroup version.
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144

# (HostConfig field, the runtime's feature name, dockerd's warning when the kernel lacks it)
_DISCARDED = (
    ("Memory", "memory_limit",
     "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded."),
    ("MemorySwap", "swap_limit",
     "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without "
     "swap."),
    ("MemoryReservation", "memory_reservation",
     "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation "
     "discarded."),
    ("CpuShares", "cpu_shares",
     "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."),
    ("CpuPeriod", "cpu_cfs",
     "Your kernel does not support CPU cfs period or the cgroup is not mounted. Period discarded."),
    ("CpuQuota", "cpu_cfs",
     "Your kernel does not support CPU cfs quota or the cgroup is not mounted. Quota discarded."),
    ("CpusetCpus", "cpuset",
     "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."),
    ("CpusetMems", "cpuset",
     "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."),
    ("PidsLimit", "pids_limit",
     "Your kernel does not support pids limit capabilities or the cgroup is not mounted. PIDs limit discarded."),
    ("BlkioWeight", "blkio_weight",
     "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."),
    ("BlkioWeightDevice", "blkio_weight_device",
     "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."),
    ("BlkioDeviceReadBps", "blkio_read_bps_device",
     "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit "
     "discarded."),
    ("BlkioDeviceWriteBps", "blkio_write_bps_device",
     "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write "
     "limit discarded."),
    ("BlkioDeviceReadIOps", "blkio_read_iops_device",
     "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit "
     "discarded."),
    ("BlkioDeviceWriteIOps", "blkio_write_iops_device",
     "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit "
     "discarded."),
)


class Features(Protocol):
    async def features(self) -> Mapping[str, Any]: ...


class HostFeatures:
    """The runtime's probe of the host kernel, asked once: the kernel does not change under a running daemon."""

    def __init__(self, runtime: RuntimeAPI) -> None:
        self._rt = runtime
        self._features: dict[str, Any] | None = None

    async def features(self) -> Mapping[str, Any]:
        if self._features is None:
            self._features = (await self._rt.sysinfo()).model_dump()
        return self._features


def discard_unsupported(resources: Any, features: Mapping[str, Any]) -> list[str]:
    """Unset on `resources` (a model with HostConfig's field names) what this kernel cannot limit; the warnings."""
    if getattr(resources, "NanoCpus", None) and not features.get("cpu_cfs"):
        raise InvalidArgument("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the "
                              "cgroup is not mounted")
    warnings: list[str] = []
    for name, feature, warning in _DISCARDED:
        value = getattr(resources, name, None)
        # PidsLimit 0 and -1 mean "unlimited": nothing to discard.
        if value and not (name == "PidsLimit" and value < 0) and not features.get(feature):
            setattr(resources, name, None)
            if warning not in warnings:
                warnings.append(warning)
            if name == "Memory":
                resources.MemorySwap = None
    return warnings


def clamp_cpu_shares(host_config: Any) -> None:
    """A create's CpuShares outside the kernel's bounds is brought within them, silently, as dockerd does (runc
    would refuse the value when the container starts); an update's is refused (resources.py)."""
    shares = host_config.CpuShares
    if shares:
        host_config.CpuShares = min(max(shares, MIN_CPU_SHARES), MAX_CPU_SHARES)


KERNEL_MEMORY_WARNING = "Specifying a kernel memory limit is deprecated and will be removed in a future release."


def discard_memory_policy(host_config: Any, features: Mapping[str, Any]) -> list[str]:
    """Create's swappiness, OOM-killer and kernel memory settings (no update changes them), with dockerd's
    warnings."""
    warnings: list[str] = []
    if getattr(host_config, "KernelMemory", None):
        # Not in the API since 1.42 (older clients still send it) and ignored by runc 1.1 under dockerd too: the
        # client is told, in dockerd's words.
        warnings.append(KERNEL_MEMORY_WARNING)
    if host_config.MemorySwappiness not in (None, -1) and not features.get("memory_swappiness"):
        host_config.MemorySwappiness = None
        warnings.append("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                        "Memory swappiness discarded.")
    if host_config.OomKillDisable and not features.get("oom_kill_disable"):
        host_config.OomKillDisable = False
        warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
    elif host_config.OomKillDisable and not host_config.Memory:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, this can result in "
                        "the system running out of resources.")
    return warnings
