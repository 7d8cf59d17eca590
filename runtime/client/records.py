"""What the runtime API answers, as typed records: the client returns these, never raw dicts.

They mirror the runtime's response models field for field (tests/unit/test_client_records.py
holds each against the daemon's own OpenAPI document, so the two cannot drift apart) without
importing the daemon's internals. Unknown fields are ignored: a newer daemon may add some.
Records are frozen: a caller that wants a changed one asks the runtime for it.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Version(_Record):
    version: str
    api: str
    runtimes: dict[str, str] = {}


class HostFeatures(_Record):
    """What the host's kernel supports, probed once by the runtime (dockerd's sysinfo)."""

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
    recursive_readonly: bool = False


class Descriptor(_Record):
    """An OCI content descriptor; fields beyond the three required ones are kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True)
    mediaType: str
    digest: str
    size: int


class RemoteDescription(_Record):
    """What a reference names in its registry, read without pulling (POST /v1/images/describe)."""

    descriptor: Descriptor
    # architecture, os, and os.version, os.features, variant where the registry gives them.
    platforms: list[dict[str, Any]]


class SearchResults(_Record):
    """A registry index's answer to a search (POST /v1/images/search): its host and its results."""

    index: str
    # name, description, star_count, is_official, is_automated: Docker's search result fields.
    results: list[dict[str, Any]]


class Image(_Record):
    name: str
    target: Descriptor
    labels: dict[str, str] = Field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0


class ContentInfo(_Record):
    digest: str
    size: int
    labels: dict[str, str] = Field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0


class Usage(_Record):
    size: int = 0  # bytes on disk
    inodes: int = 0
    content: int = 0  # bytes of file contents and symlink targets: Docker's size


class SnapshotInfo(_Record):
    name: str
    key: str
    parent: str | None = None
    kind: str  # active, view, committed
    labels: dict[str, str] = Field(default_factory=dict)
    created: float
    updated: float


class Mount(_Record):
    """One mount(2) call of a snapshot: fstab-style options (ro, rbind, lowerdir=...)."""

    type: str
    source: str
    options: list[str] = Field(default_factory=list)


class Container(_Record):
    id: str
    image: str
    snapshotter: str
    snapshot_key: str
    runtime: str
    spec: dict[str, Any]
    labels: dict[str, str] = Field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0


class CreatedContainer(Container):
    """What creating a container answers: its record and the mounts of its writable snapshot."""

    rootfs: list[Mount]


class ProcessIO(_Record):
    """Where a process's stdio is: conmon's attach socket and control fifo, and its log."""

    attach_socket: str
    ctl: str
    log_path: str | None


class Process(_Record):
    id: str
    pid: int = 0
    status: str = "created"  # created, running, paused, stopped
    terminal: bool = False
    stdin: bool = False
    exit_status: int | None = None
    created_at: float = 0.0
    started_at: float | None = None
    exited_at: float | None = None


class Exec(Process):
    process: dict[str, Any] = Field(default_factory=dict)


class Task(Process):
    namespace: str
    runtime: str
    runtime_binary: str | None = None  # the binary it runs with in place of its runtime's own
    runtime_args: list[str] = Field(default_factory=list)
    keep_stdin_open: bool = False
    cgroups_path: str | None = None
    rootfs: str | None = None
    log_path: str | None = None  # set for the CRI's tasks, which log where the kubelet reads
    oom_killed: bool = False
    execs: dict[str, Exec] = Field(default_factory=dict)


class CreatedTask(Task):
    io: ProcessIO


class CreatedExec(Exec):
    io: ProcessIO


class ExitStatus(_Record):
    exit_status: int
    exited_at: float
    oom_killed: bool = False  # statuses of a task (not of an exec): its cgroup saw an OOM kill


class BlkioEntry(_Record):
    major: int
    minor: int
    op: str
    value: int


class Metrics(_Record):
    cpu_usage_ns: int | None = None
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    cpu_percpu_ns: list[int] | None = None
    cpu_periods: int | None = None
    cpu_throttled_periods: int | None = None
    cpu_throttled_ns: int | None = None
    memory_usage: int | None = None
    memory_max_usage: int | None = None
    memory_limit: int | None = None
    memory_inactive_file: int | None = None
    pids_current: int | None = None
    pids_limit: int | None = None
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None
    memory_failcnt: int | None = None
    memory_stat: dict[str, int] = Field(default_factory=dict)
    blkio: dict[str, list[BlkioEntry]] = Field(default_factory=dict)
