"""OCI runtime spec (config.json) generation with Docker's defaults.

`generate()` combines an image's config with per-container options the way
`docker run` does and returns a spec runc 1.1 accepts on this kind of host. Host
limits that would only surface as an opaque runc failure at start (capabilities
outside our bounding set, rlimits above our hard limit, a lower oom_score_adj) are
turned into InvalidArgument here instead.
"""
from __future__ import annotations

import os
import posixpath
import re
import resource
import stat
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runtime.errors import Internal, InvalidArgument
from runtime.tasks import cgroups, seccomp
from runtime.tasks.users import resolve_user

OCI_VERSION = "1.0.2-dev"  # what runc 1.1 implements
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Linux's HOST_NAME_MAX.
_MAX_HOSTNAME = 64
# Docker refuses smaller limits: the runtime itself would not fit.
MIN_MEMORY = 6 * 1024 * 1024
DEFAULT_NOFILE = 1048576
_CPU_PERIOD = 100_000
_RLIM_INFINITY_OCI = 2**64 - 1

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

# Linux resource numbers (Python's resource module lacks RLIMIT_LOCKS).
_RLIMITS: dict[str, int] = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7, "memlock": 8,
    "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15,
}

# Sysctls that belong to a namespace the container owns, and which namespace that is.
_IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
    "kernel.shmmni", "kernel.shm_rmid_forced",
})
_UTS_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})

# Docker's allowed device cgroup rules for an unprivileged container: mknod of anything
# (creating a node grants no access), plus the nodes every program expects in /dev.
_DEFAULT_DEVICE_RULES: tuple[tuple[str, int | None, int | None, str], ...] = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),  # null
    ("c", 1, 5, "rwm"),  # zero
    ("c", 1, 7, "rwm"),  # full
    ("c", 1, 8, "rwm"),  # random
    ("c", 1, 9, "rwm"),  # urandom
    ("c", 5, 0, "rwm"),  # tty
    ("c", 5, 1, "rwm"),  # console
    ("c", 5, 2, "rwm"),  # ptmx
    ("c", 136, None, "rwm"),  # pts/*
    ("c", 10, 200, "rwm"),  # net/tun
)
# Directories of /dev that hold no device nodes a privileged container should copy.
_SKIP_HOST_DEV = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
# runc sets these up itself; passing the host's would clash.
_SKIP_HOST_DEV_NODES = frozenset({"/dev/console", "/dev/ptmx"})

_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_ACCESS_RE = re.compile(r"^[rwm]{1,3}$")


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
    """Per-container settings; None/empty means Docker's default."""

    args: list[str] | None = None  # replaces entrypoint and cmd entirely
    entrypoint: list[str] | None = None  # given (even empty): the image's Cmd is dropped too
    cmd: list[str] | None = None
    env: list[str] = Field(default_factory=list)  # KEY=VALUE overrides; a bare KEY removes it
    cwd: str | None = None
    user: str | None = None
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
    sysctls: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    cgroup_parent: str | None = None
    netns: str | None = None  # None: new namespace; "host"; or a namespace path to join
    pid_mode: Literal["host"] | None = None
    ipc_mode: Literal["host"] | None = None
    uts_mode: Literal["host"] | None = None
    seccomp: str = "default"  # "default", "unconfined", a profile path or the profile JSON
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None


# --- process -------------------------------------------------------------------------


def _command(image: dict[str, Any], opts: SpecOptions) -> list[str]:
    if opts.args is not None:
        args = list(opts.args)
    elif opts.entrypoint is not None:
        # `--entrypoint ""` arrives as [""]: it clears the entrypoint, like an empty list.
        entrypoint = [] if opts.entrypoint == [""] else list(opts.entrypoint)
        args = entrypoint + list(opts.cmd or [])
    else:
        # An empty cmd counts as unset, as in Docker.
        cmd = opts.cmd or image.get("Cmd") or []
        args = list(image.get("Entrypoint") or []) + list(cmd)
    if not args or not args[0]:
        raise InvalidArgument("no command specified")
    return args


def _merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Later values replace earlier ones by key, keeping first positions; a bare KEY unsets."""
    out: dict[str, str | None] = {}
    for item in base:
        key, _, _ = item.partition("=")
        out[key] = item
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not key or "\0" in item:
            raise InvalidArgument(f"invalid environment variable {item!r}")
        if sep:
            out[key] = item
        else:
            out.pop(key, None)
    return [v for v in out.values() if v is not None]


def _env(image: dict[str, Any], opts: SpecOptions, hostname: str, home: str) -> list[str]:
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if opts.tty:
        base.append("TERM=xterm")
    env = _merge_env(_merge_env(base, list(image.get("Env") or [])), opts.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    return env


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


def _normalize_cap(name: str) -> str:
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAPABILITIES:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return full


def capabilities(opts: SpecOptions, available: list[str]) -> list[str]:
    """Docker's capability arithmetic: ALL in cap_add wins, then ALL in cap_drop, else drop then add."""
    if opts.privileged:
        return list(available)
    adds = list(dict.fromkeys(_normalize_cap(c) for c in opts.cap_add))
    drops = {_normalize_cap(c) for c in opts.cap_drop}
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


def _host_hard_limit(number: int) -> int:
    hard = resource.getrlimit(number)[1]
    return _RLIM_INFINITY_OCI if hard == resource.RLIM_INFINITY else hard


def _rlimit_value(value: int, name: str) -> int:
    if value == -1:
        return _RLIM_INFINITY_OCI
    if value < 0:
        raise InvalidArgument(f"invalid ulimit {name}: negative value {value}")
    return value


def rlimits(ulimits: list[Ulimit]) -> list[dict[str, Any]]:
    """Explicit ulimits, checked against our hard limits, plus Docker's NOFILE default.

    Raising a hard limit needs CAP_SYS_RESOURCE, which this runtime may not have, so a
    request above our own hard limit is refused here rather than failing inside runc;
    the default is quietly lowered to fit instead.
    """
    out: dict[str, dict[str, Any]] = {}
    for u in ulimits:
        short = u.name.strip().lower().removeprefix("rlimit_")
        if short not in _RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {u.name}")
        key = "RLIMIT_" + short.upper()
        if key in out:
            raise InvalidArgument(f"ulimit {short} given twice")
        soft, hard = _rlimit_value(u.soft, short), _rlimit_value(u.hard, short)
        if soft > hard:
            raise InvalidArgument(f"ulimit {short}: soft limit {u.soft} is greater than hard limit {u.hard}")
        host_hard = _host_hard_limit(_RLIMITS[short])
        if hard > host_hard:
            raise InvalidArgument(
                f"ulimit {short}: hard limit {u.hard} is above the host's hard limit {host_hard}")
        out[key] = {"type": key, "hard": hard, "soft": soft}
    if "RLIMIT_NOFILE" not in out:
        nofile = min(DEFAULT_NOFILE, _host_hard_limit(_RLIMITS["nofile"]))
        out["RLIMIT_NOFILE"] = {"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}
    return list(out.values())


def _oom_score_adj(value: int | None) -> int | None:
    if not value:
        return None  # inherit: writing 0 would itself be lowering under a positive parent
    if value < 0:
        raise InvalidArgument(f"oom_score_adj {value} is not allowed: it can only be raised (0 to 1000) here")
    if value > 1000:
        raise InvalidArgument(f"oom_score_adj {value} is out of range (0 to 1000)")
    with open("/proc/self/oom_score_adj", encoding="ascii") as fh:
        current = int(fh.read())
    if value < current:
        raise InvalidArgument(f"oom_score_adj {value} is below the runtime's own {current}: it cannot be lowered")
    return value


# --- mounts --------------------------------------------------------------------------


def _mount(dest: str, typ: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": typ, "source": source, "options": options}


def _default_mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    sys_ro = [] if opts.privileged else ["ro"]
    mounts = [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", *sys_ro]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", *sys_ro]),
    ]
    if opts.ipc_mode == "host":
        # Sharing the host's IPC namespace means sharing its POSIX shm and queues too.
        mounts.append(_mount("/dev/shm", "bind", "/dev/shm", ["rbind", "nosuid", "noexec", "nodev"]))
        if os.path.isdir("/dev/mqueue"):
            mounts.append(_mount("/dev/mqueue", "bind", "/dev/mqueue", ["rbind", "nosuid", "noexec", "nodev"]))
    else:
        mounts.append(_mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]))
        mounts.append(_mount("/dev/shm", "tmpfs", "shm",
                             ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]))
    return mounts


def _clean_destination(dest: str) -> str:
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid mount destination {dest!r}: it must be an absolute path")
    cleaned = posixpath.normpath(dest)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if cleaned == "/":
        raise InvalidArgument("a mount cannot replace the root filesystem")
    return cleaned


def _tmpfs_options(spec: str) -> list[str]:
    # Docker's defaults for --tmpfs, each of which the user may flip back.
    flags = {"noexec": "exec", "nosuid": "suid", "nodev": "dev"}
    given = [o for o in spec.split(",") if o]
    kept = [d for d, opposite in flags.items() if opposite not in given and d not in given]
    return kept + given


def _user_mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    for m in opts.mounts:
        dest = _clean_destination(m.destination)
        options = list(m.options)
        source = m.source
        if m.type == "bind":
            if not source.startswith("/"):
                raise InvalidArgument(f"bind mount source {source!r} must be an absolute path")
            if not os.path.exists(source):
                raise InvalidArgument(f"bind mount source path does not exist: {source}")
            if "bind" not in options and "rbind" not in options:
                options.append("rbind")
        mounts.append(_mount(dest, m.type, source or m.type, options))
    for dest, spec in opts.tmpfs.items():
        mounts.append(_mount(_clean_destination(dest), "tmpfs", "tmpfs", _tmpfs_options(spec)))
    seen: set[str] = set()
    for m in mounts:
        if m["destination"] in seen:
            raise InvalidArgument(f"duplicate mount point: {m['destination']}")
        seen.add(m["destination"])
    # Parents before children, or a later parent mount would hide an earlier child.
    return sorted(mounts, key=lambda m: m["destination"].count("/"))


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    user = _user_mounts(opts)
    # A user mount replaces any default at or below its destination (a user /dev takes /dev/pts with it).
    defaults = [d for d in _default_mounts(opts) if not any(_under(d["destination"], u["destination"]) for u in user)]
    return defaults + user


# --- linux ---------------------------------------------------------------------------


def _device_rule(typ: str, major: int | None, minor: int | None, access: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": typ, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


def _device_node(container_path: str, st: os.stat_result) -> dict[str, Any]:
    return {
        "path": container_path,
        "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def _parse_device(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) == 1:
        return parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if _ACCESS_RE.match(parts[1]):
            return parts[0], parts[0], parts[1]
        return parts[0], parts[1], "rwm"
    if len(parts) == 3 and _ACCESS_RE.match(parts[2]):
        return parts[0], parts[1], parts[2]
    raise InvalidArgument(f"invalid device specification: {spec}")


def _user_devices(specs: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes, rules = [], []
    for spec in specs:
        host, container, access = _parse_device(spec)
        if not host.startswith("/") or not container.startswith("/"):
            raise InvalidArgument(f"invalid device specification {spec!r}: paths must be absolute")
        try:
            st = os.stat(host)
        except OSError as e:
            raise InvalidArgument(f"error gathering device information for {host}: {e.strerror}") from e
        except ValueError as e:  # a NUL byte in the path
            raise InvalidArgument(f"error gathering device information for {host!r}: {e}") from e
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise InvalidArgument(f"{host} is not a device node")
        node = _device_node(posixpath.normpath(container), st)
        nodes.append(node)
        rules.append(_device_rule(node["type"], node["major"], node["minor"], access))
    return nodes, rules


def _host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every device node of the host's /dev, as a privileged container gets them."""
    nodes = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_HOST_DEV]
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if path in _SKIP_HOST_DEV_NODES:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # a hot-unplugged device
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                nodes.append(_device_node(path, st))
    return nodes


def _sysctls(opts: SpecOptions) -> dict[str, str]:
    for key in opts.sysctls:
        name = key.replace("/", ".")
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if opts.ipc_mode == "host":
                raise InvalidArgument(f"sysctl {key} is not allowed with the host's IPC namespace")
        elif name.startswith("net."):
            if opts.netns == "host":
                raise InvalidArgument(f"sysctl {key} is not allowed with the host's network namespace")
        elif name in _UTS_SYSCTLS:
            if opts.uts_mode == "host":
                raise InvalidArgument(f"sysctl {key} is not allowed with the host's UTS namespace")
        else:
            raise InvalidArgument(f"sysctl {key} is not allowed: it is not namespaced")
    return dict(opts.sysctls)


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
        res["blockIO"] = {"weight": opts.blkio_weight}
    return res


def _resources(opts: SpecOptions, device_rules: list[dict[str, Any]]) -> dict[str, Any]:
    if opts.privileged:
        devices = [{"allow": True, "access": "rwm"}]
    else:
        devices = [{"allow": False, "access": "rwm"}]
        devices += [_device_rule(*rule) for rule in _DEFAULT_DEVICE_RULES]
        devices += device_rules
    return {"devices": devices, **linux_resources(opts)}


def _namespaces(opts: SpecOptions) -> list[dict[str, str]]:
    ns: list[dict[str, str]] = []
    if opts.pid_mode != "host":
        ns.append({"type": "pid"})
    if opts.netns is None:
        ns.append({"type": "network"})
    elif opts.netns != "host":
        if not opts.netns.startswith("/"):
            raise InvalidArgument(f"invalid netns {opts.netns!r}: use 'host' or an absolute namespace path")
        ns.append({"type": "network", "path": opts.netns})
    if opts.ipc_mode != "host":
        ns.append({"type": "ipc"})
    if opts.uts_mode != "host":
        ns.append({"type": "uts"})
    ns.append({"type": "mount"})
    # Docker's "private" cgroupns default applies to v2 hosts only; on v1 it is "host".
    if cgroups.detect_mode() is cgroups.CgroupMode.UNIFIED:
        ns.append({"type": "cgroup"})
    return ns


def _hostname(container_id: str, opts: SpecOptions) -> str:
    if opts.uts_mode == "host":
        if opts.hostname or opts.domainname:
            raise InvalidArgument("conflicting options: hostname and the host's UTS namespace")
        return os.uname().nodename
    if opts.hostname:
        hostname = opts.hostname
    elif opts.netns == "host":
        hostname = os.uname().nodename  # Docker's choice for --network host
    else:
        hostname = container_id[:12]
    if len(hostname) > _MAX_HOSTNAME or "\0" in hostname or "/" in hostname:
        raise InvalidArgument(f"invalid hostname {hostname!r}: at most {_MAX_HOSTNAME} characters, no '/'")
    return hostname


def _paths(given: list[str] | None, default: tuple[str, ...], privileged: bool) -> list[str]:
    if privileged:
        return []
    paths = list(default if given is None else given)
    for p in paths:
        if not p.startswith("/"):
            raise InvalidArgument(f"masked and read-only paths must be absolute: {p!r}")
    return paths


def _seccomp(opts: SpecOptions, caps: list[str]) -> dict[str, Any] | None:
    if opts.seccomp == "unconfined":
        return None
    if opts.seccomp == "default":
        return None if opts.privileged else seccomp.default_profile(None, caps)
    return seccomp.load_profile(opts.seccomp, None, caps)


def generate(image_config: dict[str, Any], rootfs: str, container_id: str, namespace: str,
             opts: SpecOptions) -> dict[str, Any]:
    """The OCI spec for a container of `image_config` (the image config blob or its "config" object)."""
    cgroups.validate_container_id(container_id)
    image = image_config.get("config") if isinstance(image_config.get("config"), dict) else image_config
    image = image or {}

    args = _command(image, opts)
    cwd = opts.cwd or image.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory {cwd!r} is invalid: it needs to be an absolute path")
    user = resolve_user(rootfs, opts.user if opts.user is not None else image.get("User"), opts.additional_gids)
    hostname = _hostname(container_id, opts)
    caps = capabilities(opts, host_capabilities())

    process: dict[str, Any] = {
        "terminal": opts.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": _env(image, opts, hostname, user.home),
        "cwd": cwd,
        "capabilities": {
            "bounding": list(caps), "effective": list(caps), "permitted": list(caps), "inheritable": [], "ambient": [],
        },
        "rlimits": rlimits(opts.ulimits),
        "noNewPrivileges": opts.no_new_privileges,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = user.additional_gids
    if (adj := _oom_score_adj(opts.oom_score_adj)) is not None:
        process["oomScoreAdj"] = adj

    device_nodes, device_rules = _user_devices(opts.devices)
    if opts.privileged:
        # Every host device, except where an explicit --device maps onto the same path.
        taken = {n["path"] for n in device_nodes}
        device_nodes = [n for n in _host_devices() if n["path"] not in taken] + device_nodes

    linux: dict[str, Any] = {
        "namespaces": _namespaces(opts),
        "resources": _resources(opts, device_rules),
        "cgroupsPath": cgroups.cgroups_path(namespace, container_id, opts.cgroup_parent),
        "maskedPaths": _paths(opts.masked_paths, MASKED_PATHS, opts.privileged),
        "readonlyPaths": _paths(opts.readonly_paths, READONLY_PATHS, opts.privileged),
    }
    if device_nodes:
        linux["devices"] = device_nodes
    if sysctl := _sysctls(opts):
        linux["sysctl"] = sysctl
    if (profile := _seccomp(opts, caps)) is not None:
        linux["seccomp"] = profile

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": opts.readonly_rootfs},
        "mounts": mounts(opts),
        "linux": linux,
    }
    if opts.uts_mode != "host":
        spec["hostname"] = hostname
        if opts.domainname:
            spec["domainname"] = opts.domainname
    if opts.annotations:
        spec["annotations"] = dict(opts.annotations)
    return spec
