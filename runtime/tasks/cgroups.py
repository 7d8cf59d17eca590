"""Host cgroup layout, container cgroup paths, metrics and cleanup.

runc (cgroupfs driver) is given an absolute `cgroupsPath`; on v1 and hybrid hosts it
creates that path under every hierarchy mounted in /sys/fs/cgroup (plus the unified
mount on hybrid hosts), on a pure v2 host one directory. This module mirrors that so the
daemon can read metrics and remove what runc leaves behind.
"""
from __future__ import annotations

import enum
import errno
import functools
import os
import re
import time
from dataclasses import dataclass

from pydantic import BaseModel, Field

from runtime import namespaces
from runtime.errors import FailedPrecondition, InvalidArgument

CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "/pyengine"
# runc's container id rule.
_ID_RE = re.compile(r"^[\w+\-.]+$")
# v1 reports "no limit" as the largest page-aligned counter; anything this big is unlimited.
_V1_UNLIMITED = 1 << 62
# The v1 hierarchies runc 1.1 creates a directory in (it ignores any other).
_RUNC_V1_SUBSYSTEMS = frozenset({
    "cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio", "perf_event",
    "hugetlb", "pids", "rdma", "name=systemd",
})


class CgroupMode(str, enum.Enum):
    V1 = "v1"
    HYBRID = "hybrid"  # v1 controllers plus a controller-less v2 mount at <root>/unified
    UNIFIED = "unified"


@dataclass(frozen=True)
class _Hierarchy:
    mountpoint: str
    controllers: frozenset[str]  # empty for the v2 hierarchy


def _parse_mountinfo(text: str, root: str = CGROUP_ROOT) -> tuple[CgroupMode, list[_Hierarchy]]:
    # Later lines mount over earlier ones at the same place: keep the visible (last) one.
    visible: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        mountpoint = fields[4].replace("\\040", " ")
        # Hierarchies bind-mounted elsewhere are not the ones runc uses.
        if mountpoint == root or os.path.dirname(mountpoint) == root:
            visible[mountpoint] = (tail[0], tail[2])
    v1: list[_Hierarchy] = []
    v2: _Hierarchy | None = None
    for mountpoint, (fstype, superopts) in visible.items():
        if fstype == "cgroup2":
            v2 = _Hierarchy(mountpoint, frozenset())
        elif fstype == "cgroup":
            known = _RUNC_V1_SUBSYSTEMS.intersection(superopts.split(","))
            if known:
                v1.append(_Hierarchy(mountpoint, frozenset(known)))
    if v2 is not None and v2.mountpoint == root:
        return CgroupMode.UNIFIED, [v2]
    if v2 is not None and v1:
        return CgroupMode.HYBRID, [*v1, v2]
    if v1:
        return CgroupMode.V1, v1
    raise FailedPrecondition(f"no cgroup hierarchy is mounted under {root}")


def _layout() -> tuple[CgroupMode, list[_Hierarchy]]:
    # Re-read every time: it is cheap and the daemon may outlive a remount.
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return _parse_mountinfo(fh.read())


def detect_mode() -> CgroupMode:
    return _layout()[0]


def controller_roots() -> tuple[CgroupMode, dict[str, str]]:
    """Each v1 controller's hierarchy root; on a unified host, "" names the one v2 root."""
    mode, hierarchies = _layout()
    if mode is CgroupMode.UNIFIED:
        return mode, {"": hierarchies[0].mountpoint}
    return mode, {c: h.mountpoint for h in hierarchies for c in h.controllers}


def validate_container_id(container_id: str) -> str:
    if not container_id or len(container_id) > 1024 or not _ID_RE.match(container_id) or container_id in (".", ".."):
        raise InvalidArgument(f"invalid container id {container_id!r}: use letters, digits, '_', '+', '-' and '.'")
    return container_id


def _normalize_parent(parent: str) -> str:
    parts = [p for p in parent.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"invalid cgroup parent {parent!r}")
    # A relative parent would be resolved against runc's own cgroup, which differs per
    # controller on a v1 host; anchor it at the hierarchy root instead.
    return "/" + "/".join(parts)


def cgroups_path(namespace: str, container_id: str, parent: str | None = None) -> str:
    """The absolute cgroupfs path runc gets: /pyengine/<namespace>/<id> or <parent>/<id>."""
    validate_container_id(container_id)
    base = _normalize_parent(parent) if parent else f"{DEFAULT_PARENT}/{namespaces.validate(namespace)}"
    return f"{base}/{container_id}"


def cgroup_dirs(path: str) -> list[str]:
    """The leaf directory runc creates for `path` in each hierarchy on this host."""
    rel = _normalize_parent(path).lstrip("/")
    return [os.path.join(h.mountpoint, rel) for h in _layout()[1]]


def remove_cgroup(path: str) -> None:
    """rmdir the leaf directories of `path`; missing ones are fine.

    Processes that have just been killed can keep a v1 cgroup busy for a few
    milliseconds, so EBUSY is retried briefly before giving up.
    """
    for d in cgroup_dirs(path):
        delay = 0.01
        for attempt in range(6):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or attempt == 5:
                    raise FailedPrecondition(f"cannot remove cgroup {d}: {e.strerror}") from e
                time.sleep(delay)
                delay *= 2


class BlkioEntry(BaseModel):
    """One device's counter for one operation, as the kernel reports it (v1: Read/Write/Sync/Async/Discard/Total,
    v2: read/write)."""

    major: int
    minor: int
    op: str
    value: int


class Metrics(BaseModel):
    """A container's resource use; None where this host's cgroups do not report it."""

    cpu_usage_ns: int | None = None
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    cpu_percpu_ns: list[int] | None = None  # v1 only
    cpu_periods: int | None = None  # CFS periods, those throttled and the time throttled (cpu.stat)
    cpu_throttled_periods: int | None = None
    cpu_throttled_ns: int | None = None
    memory_usage: int | None = None
    memory_max_usage: int | None = None
    memory_limit: int | None = None  # None: unlimited
    memory_inactive_file: int | None = None  # Docker subtracts this to show "usage"
    pids_current: int | None = None
    pids_limit: int | None = None  # None: unlimited
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None
    memory_failcnt: int | None = None  # v1 only
    # The counters of memory.stat dockerd passes on (its stats map), by the kernel's names.
    memory_stat: dict[str, int] = Field(default_factory=dict)
    # Per-device counters by the cgroup file they come from (v1: blkio.*; v2: io.stat as io_service_bytes_recursive).
    blkio: dict[str, list[BlkioEntry]] = Field(default_factory=dict)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    if text is None:
        return None
    text = text.strip()
    return None if text == "max" or not text else int(text)


def _keyed(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _controller_dir(hierarchies: list[_Hierarchy], path: str, controller: str) -> str | None:
    rel = path.lstrip("/")
    for h in hierarchies:
        if controller in h.controllers:
            return os.path.join(h.mountpoint, rel)
    return None


def _blkio_entries(text: str | None) -> list[BlkioEntry]:
    """A v1 blkio file's "MAJ:MIN Op value" lines; its last line, "Total value" of all devices, is left out."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, _, minor = parts[0].partition(":")
            out.append(BlkioEntry(major=int(major), minor=int(minor), op=parts[1], value=int(parts[2])))
    return out


# v1's blkio counters by file; only the first two exist without CFQ (as blkio.throttle.*), as containerd reads them.
_V1_BLKIO = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queued_recursive",
             "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive",
             "sectors_recursive")


def _v1_blkio(m: Metrics, d: str) -> None:
    cfq = os.path.exists(os.path.join(d, "blkio.io_serviced_recursive"))
    m.blkio = {name: _blkio_entries(_read(os.path.join(d, "blkio." + name))) if cfq else [] for name in _V1_BLKIO}
    if not any(m.blkio.values()):  # CFQ's counters stay empty under other schedulers; the throttle ones count
        for name in _V1_BLKIO[:2]:
            m.blkio[name] = _blkio_entries(_read(os.path.join(d, "blkio.throttle." + name)))
    served = m.blkio["io_service_bytes_recursive"]
    m.io_read_bytes = sum(e.value for e in served if e.op == "Read")
    m.io_write_bytes = sum(e.value for e in served if e.op == "Write")


# The memory.stat counters dockerd's stats map carries, v1 and v2 (moby's statsV1/statsV2).
_V1_MEMORY_STAT = frozenset(
    f"{total}{name}" for total in ("", "total_") for name in (
        "active_anon", "active_file", "cache", "dirty", "inactive_anon", "inactive_file", "mapped_file", "pgfault",
        "pgmajfault", "pgpgin", "pgpgout", "rss", "rss_huge", "unevictable", "writeback")
) | {"hierarchical_memory_limit", "hierarchical_memsw_limit"}
_V2_MEMORY_STAT = frozenset({
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
    "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
    "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault", "workingset_activate",
    "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
})


def _v1_cpu(m: Metrics, d: str) -> None:
    m.cpu_usage_ns = _read_int(os.path.join(d, "cpuacct.usage"))
    percpu = _read(os.path.join(d, "cpuacct.usage_percpu"))
    m.cpu_percpu_ns = [int(x) for x in percpu.split()] if percpu is not None else None
    # In ticks, as containerd reads them (cpuacct.usage_user/_sys do not add up to cpuacct.usage either).
    ticks, hz = _keyed(_read(os.path.join(d, "cpuacct.stat"))), os.sysconf("SC_CLK_TCK")
    m.cpu_user_ns = ticks["user"] * 10**9 // hz if "user" in ticks else None
    m.cpu_system_ns = ticks["system"] * 10**9 // hz if "system" in ticks else None


def _throttling(m: Metrics, stat: dict[str, int], ns_per_unit: int, key: str) -> None:
    m.cpu_periods, m.cpu_throttled_periods = stat.get("nr_periods"), stat.get("nr_throttled")
    m.cpu_throttled_ns = stat[key] * ns_per_unit if key in stat else None


def _metrics_v1(hierarchies: list[_Hierarchy], path: str) -> Metrics:
    m = Metrics()
    if (d := _controller_dir(hierarchies, path, "cpuacct")) is not None:
        _v1_cpu(m, d)
    if (d := _controller_dir(hierarchies, path, "cpu")) is not None:
        _throttling(m, _keyed(_read(os.path.join(d, "cpu.stat"))), 1, "throttled_time")
    if (d := _controller_dir(hierarchies, path, "memory")) is not None:
        m.memory_usage = _read_int(os.path.join(d, "memory.usage_in_bytes"))
        m.memory_max_usage = _read_int(os.path.join(d, "memory.max_usage_in_bytes"))
        m.memory_failcnt = _read_int(os.path.join(d, "memory.failcnt"))
        limit = _read_int(os.path.join(d, "memory.limit_in_bytes"))
        m.memory_limit = limit if limit is not None and limit < _V1_UNLIMITED else None
        stat = _keyed(_read(os.path.join(d, "memory.stat")))
        m.memory_inactive_file = stat.get("total_inactive_file")
        m.memory_stat = {k: v for k, v in stat.items() if k in _V1_MEMORY_STAT}
    if (d := _controller_dir(hierarchies, path, "pids")) is not None:
        m.pids_current = _read_int(os.path.join(d, "pids.current"))
        m.pids_limit = _read_int(os.path.join(d, "pids.max"))
    if (d := _controller_dir(hierarchies, path, "blkio")) is not None:
        _v1_blkio(m, d)
    return m


def _v2_io(m: Metrics, text: str) -> None:
    entries = []
    for line in text.splitlines():
        device, *counters = line.split()
        major, _, minor = device.partition(":")
        values = dict(kv.partition("=")[::2] for kv in counters)
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            if key in values:
                entries.append(BlkioEntry(major=int(major), minor=int(minor), op=op, value=int(values[key])))
    m.blkio = {"io_service_bytes_recursive": entries}
    m.io_read_bytes = sum(e.value for e in entries if e.op == "read")
    m.io_write_bytes = sum(e.value for e in entries if e.op == "write")


def _metrics_v2(d: str) -> Metrics:
    m = Metrics()
    cpu = _keyed(_read(os.path.join(d, "cpu.stat")))
    for field, key in (("cpu_usage_ns", "usage_usec"), ("cpu_user_ns", "user_usec"), ("cpu_system_ns", "system_usec")):
        setattr(m, field, cpu[key] * 1000 if key in cpu else None)
    _throttling(m, cpu, 1000, "throttled_usec")
    m.memory_usage = _read_int(os.path.join(d, "memory.current"))
    m.memory_max_usage = _read_int(os.path.join(d, "memory.peak"))  # kernel >= 5.19
    m.memory_limit = _read_int(os.path.join(d, "memory.max"))
    stat = _keyed(_read(os.path.join(d, "memory.stat")))
    m.memory_inactive_file = stat.get("inactive_file")
    m.memory_stat = {k: v for k, v in stat.items() if k in _V2_MEMORY_STAT}
    m.pids_current = _read_int(os.path.join(d, "pids.current"))
    m.pids_limit = _read_int(os.path.join(d, "pids.max"))
    if (io := _read(os.path.join(d, "io.stat"))) is not None:
        _v2_io(m, io)
    return m


def read_metrics(path: str) -> Metrics:
    """Metrics of the container whose cgroupsPath is `path`."""
    path = _normalize_parent(path)
    mode, hierarchies = _layout()
    if mode is CgroupMode.UNIFIED:
        return _metrics_v2(os.path.join(hierarchies[0].mountpoint, path.lstrip("/")))
    # Hybrid hosts keep every controller on v1; the unified mount only tracks processes.
    return _metrics_v1(hierarchies, path)


# The layout oom_killed() last read: every exit asks, and reading mountinfo (one line per container's rootfs)
# was most of the cost. oom_killed_known() answers from it without touching mountinfo.
_last_layout: tuple[CgroupMode, list[_Hierarchy]] | None = None


def _oom_events(layout: tuple[CgroupMode, list[_Hierarchy]], path: str) -> str | None:
    mode, hierarchies = layout
    path = _normalize_parent(path)
    if mode is CgroupMode.UNIFIED:
        return _read(os.path.join(hierarchies[0].mountpoint, path.lstrip("/"), "memory.events"))
    d = _controller_dir(hierarchies, path, "memory")
    return _read(os.path.join(d, "memory.oom_control")) if d is not None else None


def oom_counter(path: str) -> tuple[str, bool] | None:
    """The file whose `oom_kill` line counts the cgroup's OOM kills, and whether it is v2's (memory.events,
    watched by inotify) rather than v1's (memory.oom_control, watched by an eventfd); None without one. Reads
    the layout it last read when it can: a walk of mountinfo otherwise (call it off the event loop then)."""
    global _last_layout
    if _last_layout is None:
        _last_layout = _layout()
    mode, hierarchies = _last_layout
    path = _normalize_parent(path)
    if mode is CgroupMode.UNIFIED:
        counter = os.path.join(hierarchies[0].mountpoint, path.lstrip("/"), "memory.events")
    else:
        d = _controller_dir(hierarchies, path, "memory")
        counter = os.path.join(d, "memory.oom_control") if d is not None else ""
    return (counter, mode is CgroupMode.UNIFIED) if counter and os.path.exists(counter) else None


def oom_kills(counter: str) -> int | None:
    """The `oom_kill` count in `counter` (from oom_counter()); None once the cgroup is gone."""
    try:
        text = _read(counter)
    except OSError:  # ENODEV, as the cgroup goes
        return None
    return None if text is None else _keyed(text).get("oom_kill", 0)


def oom_killed(path: str) -> bool:
    """Whether the kernel OOM-killed a process in this cgroup (kernel >= 4.13 counts it)."""
    global _last_layout
    _last_layout = _layout()
    return _keyed(_oom_events(_last_layout, path)).get("oom_kill", 0) > 0


def oom_killed_known(path: str) -> bool | None:
    """oom_killed() by the layout it last read: a single small cgroupfs read, fit for the event loop. None when
    that is not known or the cgroup's file cannot be read there (a remount, say): ask oom_killed() then."""
    events = _oom_events(_last_layout, path) if _last_layout is not None else None
    return None if events is None else _keyed(events).get("oom_kill", 0) > 0


@functools.cache
def swap_limit_supported() -> bool:
    """Whether memory+swap can be limited here (v1 needs swap accounting in the kernel). Fixed until a reboot,
    so read once: the CRI asks it for every status of a container with a memory limit, and each read is a walk
    of mountinfo (a line per container's rootfs)."""
    mode, hierarchies = _layout()
    if mode is CgroupMode.UNIFIED:
        controllers = _read(os.path.join(hierarchies[0].mountpoint, "cgroup.controllers")) or ""
        return "memory" in controllers.split()
    d = _controller_dir(hierarchies, "/", "memory")
    return d is not None and os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes"))
