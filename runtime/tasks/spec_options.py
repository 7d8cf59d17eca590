"""What a caller may ask of a container's spec: the options `spec.generate()` takes.

Kept apart from the generator so the API routers, the container store and the task
service (a resource update) can name these models without importing the code that
probes the host and builds config.json.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Ulimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str  # "nofile" or "RLIMIT_NOFILE", any case
    soft: int  # -1: unlimited
    hard: int


class SpecMount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = "bind"
    source: str = ""
    destination: str
    options: list[str] = Field(default_factory=list)
    # A bind of an empty directory (a new volume) first filled with the image's files at `destination`.
    copy_up: bool = False


class DeviceRate(BaseModel):
    """A limit on one block device: bytes or operations per second, or a weight (10-1000)."""

    model_config = ConfigDict(extra="forbid")

    path: str  # the host's block device node, e.g. /dev/vda
    rate: int = Field(ge=0)


class BlockIOLimits(BaseModel):
    """Per-device block I/O limits (Docker's --blkio-weight-device, --device-read-bps and friends)."""

    model_config = ConfigDict(extra="forbid")

    weight: list[DeviceRate] = Field(default_factory=list)
    read_bps: list[DeviceRate] = Field(default_factory=list)
    write_bps: list[DeviceRate] = Field(default_factory=list)
    read_iops: list[DeviceRate] = Field(default_factory=list)
    write_iops: list[DeviceRate] = Field(default_factory=list)


class ResourceOptions(BaseModel):
    """A container's cgroup limits: set at create, changed later by a container or task update."""

    model_config = ConfigDict(extra="forbid")

    memory: int | None = None
    memory_reservation: int | None = None
    memory_swap: int | None = None  # memory + swap; -1: unlimited swap
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    nano_cpus: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None  # <= 0: unlimited
    blkio_weight: int | None = None


class SpecOptions(ResourceOptions):
    """Per-container settings; None/empty means Docker's default.

    The process (args, env, cwd, user) is taken as given, never merged with the image's config:
    a client that wants the image's Entrypoint, Cmd, Env, WorkingDir or User puts them here.
    """

    args: list[str] | None = None  # the command: required, its first element non-empty
    env: list[str] = Field(default_factory=list)  # KEY=VALUE over the runtime's defaults; a bare KEY removes one
    cwd: str | None = None  # None: "/"
    user: str | None = None  # None: root
    additional_gids: list[str | int] = Field(default_factory=list)
    hostname: str | None = None
    domainname: str | None = None
    tty: bool = False
    stdin: bool = False  # not part of the spec: whoever starts the task wires stdin
    readonly_rootfs: bool = False
    privileged: bool = False
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    no_new_privileges: bool = False
    ulimits: list[Ulimit] = Field(default_factory=list)
    oom_score_adj: int | None = None
    mounts: list[SpecMount] = Field(default_factory=list)
    tmpfs: dict[str, str] = Field(default_factory=dict)  # destination -> "size=64m,mode=1777"
    devices: list[str] = Field(default_factory=list)  # "host[:container][:rwm]"
    device_cgroup_rules: list[str] = Field(default_factory=list)  # Docker's "c 1:3 rwm", "b *:* m"
    memory_swappiness: int | None = Field(default=None, ge=0, le=100)  # None: the kernel's
    oom_kill_disable: bool = False
    block_io: BlockIOLimits = Field(default_factory=BlockIOLimits)  # create only, not an updatable limit
    sysctls: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    cgroup_parent: str | None = None
    netns: str | None = None  # None: new namespace; "host"; or a namespace path to join
    pid_mode: str | None = None  # None: a namespace of its own; "host"; or a namespace path to join
    # None: a namespace of its own; "none": one without /dev/shm; "host"; or a namespace path to join.
    ipc_mode: str | None = None
    uts_mode: str | None = None  # None: a namespace of its own; "host"; or a namespace path to join
    cgroupns: Literal["host", "private"] | None = None  # None: private on cgroup v2 hosts, the host's on v1
    shm_size: int | None = Field(default=None, gt=0)  # bytes of the private /dev/shm; None: 64 MiB
    seccomp: str = "default"  # "default", "unconfined", a profile path or the profile JSON
    # The root's propagation inside the container (runc's default: rslave); "shared" lets a shared bind's
    # mounts made in the container reach the host.
    rootfs_propagation: Literal["shared", "rshared", "slave", "rslave", "private", "rprivate"] | None = None
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None
    # False: no /etc/hostname, /etc/hosts or /etc/resolv.conf of the runtime's over the image's (a container
    # whose files are read and written as the image has them: a builder's).
    etc_files: bool = True
