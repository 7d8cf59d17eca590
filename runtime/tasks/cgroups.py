"""Host cgroup layout, container cgroup paths, metrics and cleanup.

runc (cgroupfs driver) is given an absolute `cgroupsPath`; on v1 and hybrid hosts it
creates that path under every hierarchy mounted in /sys/fs/cgroup (plus the unified
mount on hybrid hosts), on a pure v2 host one directory. This module mirrors that so the
daemon can read metrics and remove what runc leaves behind.
"""
from __future__ import annotations

import enum
import errno
import os
import re
import time
from dataclasses import dataclass

from pydantic import BaseModel

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


class Metrics(BaseModel):
    """A container's resource use; None where this host's cgroups do not report it."""

    cpu_usage_ns: int | None = None
    memory_usage: int | None = None
    memory_max_usage: int | None = None
    memory_limit: int | None = None  # None: unlimited
    memory_inactive_file: int | None = None  # Docker subtracts this to show "usage"
    pids_current: int | None = None
    pids_limit: int | None = None  # None: unlimited
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None


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


def _v1_blkio(d: str) -> tuple[int | None, int | None]:
    # CFQ's counters exist only with that scheduler; the throttle ones always do.
    for name in ("blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"):
        text = _read(os.path.join(d, name))
        if text is None:
            continue
        read = write = 0
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "Read":
                read += int(parts[2])
            elif len(parts) == 3 and parts[1] == "Write":
                write += int(parts[2])
        return read, write
    return None, None


def _metrics_v1(hierarchies: list[_Hierarchy], path: str) -> Metrics:
    m = Metrics()
    if (d := _controller_dir(hierarchies, path, "cpuacct")) is not None:
        m.cpu_usage_ns = _read_int(os.path.join(d, "cpuacct.usage"))
    if (d := _controller_dir(hierarchies, path, "memory")) is not None:
        m.memory_usage = _read_int(os.path.join(d, "memory.usage_in_bytes"))
        m.memory_max_usage = _read_int(os.path.join(d, "memory.max_usage_in_bytes"))
        limit = _read_int(os.path.join(d, "memory.limit_in_bytes"))
        m.memory_limit = limit if limit is not None and limit < _V1_UNLIMITED else None
        m.memory_inactive_file = _keyed(_read(os.path.join(d, "memory.stat"))).get("total_inactive_file")
    if (d := _controller_dir(hierarchies, path, "pids")) is not None:
        m.pids_current = _read_int(os.path.join(d, "pids.current"))
        m.pids_limit = _read_int(os.path.join(d, "pids.max"))
    if (d := _controller_dir(hierarchies, path, "blkio")) is not None:
        m.io_read_bytes, m.io_write_bytes = _v1_blkio(d)
    return m


def _metrics_v2(d: str) -> Metrics:
    m = Metrics()
    usage_usec = _keyed(_read(os.path.join(d, "cpu.stat"))).get("usage_usec")
    m.cpu_usage_ns = usage_usec * 1000 if usage_usec is not None else None
    m.memory_usage = _read_int(os.path.join(d, "memory.current"))
    m.memory_max_usage = _read_int(os.path.join(d, "memory.peak"))  # kernel >= 5.19
    m.memory_limit = _read_int(os.path.join(d, "memory.max"))
    m.memory_inactive_file = _keyed(_read(os.path.join(d, "memory.stat"))).get("inactive_file")
    m.pids_current = _read_int(os.path.join(d, "pids.current"))
    m.pids_limit = _read_int(os.path.join(d, "pids.max"))
    io = _read(os.path.join(d, "io.stat"))
    if io is not None:
        read = write = 0
        for line in io.splitlines():
            for kv in line.split()[1:]:
                key, _, value = kv.partition("=")
                if key == "rbytes":
                    read += int(value)
                elif key == "wbytes":
                    write += int(value)
        m.io_read_bytes, m.io_write_bytes = read, write
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


def swap_limit_supported() -> bool:
    """Whether memory+swap can be limited here (v1 needs swap accounting in the kernel)."""
    mode, hierarchies = _layout()
    if mode is CgroupMode.UNIFIED:
        controllers = _read(os.path.join(hierarchies[0].mountpoint, "cgroup.controllers")) or ""
        return "memory" in controllers.split()
    d = _controller_dir(hierarchies, "/", "memory")
    return d is not None and os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes"))
