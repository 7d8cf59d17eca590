"""What this host's kernel lets a container have, probed once (dockerd's pkg/sysinfo).

Kernels differ: a blkio hierarchy without `blkio.weight` (no BFQ/CFQ scheduler), a memory
controller without swap accounting, no realtime CPU groups. Clients learn it here instead of
from a failed write at container start, and the engine answers with dockerd's warnings.
On a unified (v2) host a controller is either enabled at the root or absent, as dockerd reads it.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import os

from pydantic import BaseModel

from runtime.tasks import cgroups

_SYS_MOUNT_SETATTR = 442  # the same number on every architecture Linux added it to (5.12)


class HostFeatures(BaseModel):
    cgroup_version: str
    cgroup_driver: str = "cgroupfs"
    memory_limit: bool = False
    swap_limit: bool = False
    memory_reservation: bool = False
    memory_swappiness: bool = False
    oom_kill_disable: bool = False
    kernel_memory: bool = False
    kernel_memory_tcp: bool = False
    cpu_shares: bool = False
    cpu_cfs: bool = False
    cpu_realtime: bool = False
    cpuset: bool = False
    pids_limit: bool = False
    blkio_weight: bool = False
    blkio_weight_device: bool = False
    blkio_read_bps_device: bool = False
    blkio_write_bps_device: bool = False
    blkio_read_iops_device: bool = False
    blkio_write_iops_device: bool = False
    seccomp: bool = False
    apparmor: bool = False
    # Network sysctls dockerd sets by default in a container's own network namespace, where the kernel has them.
    ping_group_range: bool = False
    unprivileged_port_start: bool = False
    ipv6: bool = False  # the kernel has IPv6: a container's namespace with no IPv6 network gets it turned off
    # mount_setattr(2) (Linux 5.12): a read-only bind can be made read-only with every mount below it (runc's `rro`).
    recursive_readonly: bool = False


def _has(root: str | None, *names: str) -> bool:
    return root is not None and all(os.path.exists(os.path.join(root, n)) for n in names)


def _v1(roots: dict[str, str]) -> dict[str, bool]:
    mem, cpu, blkio = roots.get("memory"), roots.get("cpu"), roots.get("blkio")
    return {
        "memory_limit": _has(mem, "memory.limit_in_bytes"),
        "swap_limit": _has(mem, "memory.memsw.limit_in_bytes"),
        "memory_reservation": _has(mem, "memory.soft_limit_in_bytes"),
        "memory_swappiness": _has(mem, "memory.swappiness"),
        "oom_kill_disable": _has(mem, "memory.oom_control"),
        "kernel_memory": _has(mem, "memory.kmem.limit_in_bytes"),
        "kernel_memory_tcp": _has(mem, "memory.kmem.tcp.limit_in_bytes"),
        "cpu_shares": _has(cpu, "cpu.shares"),
        "cpu_cfs": _has(cpu, "cpu.cfs_period_us", "cpu.cfs_quota_us"),
        "cpu_realtime": _has(cpu, "cpu.rt_period_us", "cpu.rt_runtime_us"),
        "cpuset": _has(roots.get("cpuset"), "cpuset.cpus", "cpuset.mems"),
        "pids_limit": "pids" in roots,
        "blkio_weight": _has(blkio, "blkio.weight"),
        "blkio_weight_device": _has(blkio, "blkio.weight_device"),
        "blkio_read_bps_device": _has(blkio, "blkio.throttle.read_bps_device"),
        "blkio_write_bps_device": _has(blkio, "blkio.throttle.write_bps_device"),
        "blkio_read_iops_device": _has(blkio, "blkio.throttle.read_iops_device"),
        "blkio_write_iops_device": _has(blkio, "blkio.throttle.write_iops_device"),
    }


def _v2(root: str) -> dict[str, bool]:
    try:
        with open(os.path.join(root, "cgroup.controllers"), encoding="utf-8") as fh:
            enabled = set(fh.read().split())
    except OSError:
        enabled = set()
    memory, io = "memory" in enabled, "io" in enabled
    return {
        "memory_limit": memory, "swap_limit": memory, "memory_reservation": memory,
        "cpu_shares": "cpu" in enabled, "cpu_cfs": "cpu" in enabled, "cpuset": "cpuset" in enabled,
        "pids_limit": "pids" in enabled, "blkio_weight": io, "blkio_weight_device": io,
        "blkio_read_bps_device": io, "blkio_write_bps_device": io, "blkio_read_iops_device": io,
        "blkio_write_iops_device": io,
    }


def _mount_setattr() -> bool:
    """Whether the kernel has mount_setattr: asked with no mount at all, it says EINVAL rather than ENOSYS."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_MOUNT_SETATTR, -1, b"", 0, None, 0) == 0:
        return True
    return ctypes.get_errno() != errno.ENOSYS


def _seccomp() -> bool:
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            return any(line.startswith("Seccomp:") for line in fh)
    except OSError:
        return False


def _apparmor() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled", encoding="utf-8") as fh:
            return fh.read().strip() == "Y" and os.path.isdir("/sys/kernel/security/apparmor")
    except OSError:
        return False


@functools.cache
def probe() -> HostFeatures:
    mode, roots = cgroups.controller_roots()
    unified = mode is cgroups.CgroupMode.UNIFIED
    found = _v2(roots[""]) if unified else _v1(roots)
    return HostFeatures.model_validate({
        "cgroup_version": "2" if unified else "1", "seccomp": _seccomp(), "apparmor": _apparmor(),
        "ping_group_range": os.path.exists("/proc/sys/net/ipv4/ping_group_range"),
        "unprivileged_port_start": os.path.exists("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
        "ipv6": os.path.exists("/proc/sys/net/ipv6/conf/all/disable_ipv6"),
        "recursive_readonly": _mount_setattr(),
        **found})
