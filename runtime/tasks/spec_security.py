"""The confinement of a container's spec: capabilities, seccomp, masked and read-only paths.

Docker's defaults and its cap_add/cap_drop arithmetic, limited to what runc can
grant on this host: a capability outside our own bounding set would otherwise fail
only at start, as an opaque "unable to apply caps".
"""
from __future__ import annotations

from typing import Any

from runtime.errors import Internal, InvalidArgument
from runtime.tasks import seccomp
from runtime.tasks.spec_options import SpecOptions

# Index = capability number.
CAPABILITIES: tuple[str, ...] = tuple(
    "CAP_" + n for n in (
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK",
        "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN",
        "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
        "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND",
        "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
    )
)

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def _host_bounding_set() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    raise Internal("cannot read this process's capability bounding set")


def host_capabilities() -> list[str]:
    """Capabilities runc can grant here: known to the kernel and in our own bounding set.

    runc fails with "unable to apply caps: operation not permitted" for any other one
    (this host's bounding set lacks CAP_SYS_RESOURCE, for example).
    """
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
        last = int(fh.read())
    bounding = _host_bounding_set()
    return [name for i, name in enumerate(CAPABILITIES) if i <= last and bounding & (1 << i)]


def _normalize_cap(name: str, field: str) -> str:
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAPABILITIES:
        raise InvalidArgument(f'invalid {field}: unknown capability: "{full}"')
    return full


def capabilities(opts: SpecOptions, available: list[str]) -> list[str]:
    """Docker's capability arithmetic: ALL in cap_add wins, then ALL in cap_drop, else drop then add."""
    if opts.privileged:
        return list(available)
    adds = list(dict.fromkeys(_normalize_cap(c, "CapAdd") for c in opts.cap_add))
    drops = {_normalize_cap(c, "CapDrop") for c in opts.cap_drop}
    if "ALL" in adds:
        return [c for c in available if c not in drops]
    missing = [c for c in adds if c not in available]
    if missing:
        raise InvalidArgument(f"capabilities not available on this host: {', '.join(missing)}")
    if "ALL" in drops:
        return adds
    # A default this host cannot grant is left out rather than failing every container.
    kept = [c for c in DEFAULT_CAPABILITIES if c not in drops and c in available]
    return kept + [c for c in adds if c not in kept]


def _paths(given: list[str] | None, default: tuple[str, ...], privileged: bool) -> list[str]:
    if privileged:
        return []
    paths = list(default if given is None else given)
    for p in paths:
        if not p.startswith("/"):
            raise InvalidArgument(f"masked and read-only paths must be absolute: {p!r}")
    return paths


def masked_paths(opts: SpecOptions) -> list[str]:
    return _paths(opts.masked_paths, MASKED_PATHS, opts.privileged)


def readonly_paths(opts: SpecOptions) -> list[str]:
    return _paths(opts.readonly_paths, READONLY_PATHS, opts.privileged)


def seccomp_profile(opts: SpecOptions, caps: list[str]) -> dict[str, Any] | None:
    """None when the container runs unconfined (asked for, or privileged with the default)."""
    if opts.seccomp == "unconfined":
        return None
    if opts.seccomp == "default":
        return None if opts.privileged else seccomp.default_profile(None, caps)
    return seccomp.load_profile(opts.seccomp, None, caps)
