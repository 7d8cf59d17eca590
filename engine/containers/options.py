"""POST /containers/create bodies: validated at the edge, then turned into the runtime's options.

Bodies range from the CLI's full object full of zero values to docker-py's sparse
one: every field defaults, and "", 0, null and [] all mean "unset" (CLIENT-FLOWS §5.4).
Which fields are honoured and which refused is listed in fields.py; the values dockerd
checks are checked in hostchecks.py.
"""
from __future__ import annotations

import os
import posixpath
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from engine.api.gofields import Extras, go_keys
from engine.containers import hostchecks
from engine.containers.fields import refuse_unsupported, struct_fields
from engine.containers.gotypes import unmarshal_error
from engine.containers.images import Image
from engine.containers.mounts import ReadOnly, host_mounts
from engine.containers.request import ContainerConfig, CreateRequest, HostConfigModel
from engine.errors import InvalidArgument
from runtime.client.signals import parse_signal

# dockerd's default /dev/shm size (64 MiB) and its default masked and read-only paths (oci.DefaultSpec).
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
DEFAULT_MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                        "/sys/devices/virtual/powercap"]
DEFAULT_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# The fields of dockerd's structs the models keep as extras (refused ones), matched as Go matches keys too.
_EXTRAS: Extras = {CreateRequest: struct_fields("Config"), ContainerConfig: struct_fields("Config"),
           HostConfigModel: struct_fields("HostConfig")}


def parse(body: Any, api: tuple[int, int] | None = None) -> CreateRequest:
    """A create body as a client speaking `api` (None: the newest) means it."""
    if not isinstance(body, dict):
        raise InvalidArgument("invalid container config: expected a JSON object")
    body = go_keys(CreateRequest, body, _EXTRAS)
    if not set(body) & set(ContainerConfig.model_fields):
        # dockerd's words for a body with no container config in it at all (`{}`, a HostConfig alone).
        raise InvalidArgument("Config cannot be empty in order to create a container")
    try:
        req = CreateRequest.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidArgument(f"invalid container config: {where}: {err['msg']}") from None
    refuse_unsupported(body)
    hostchecks.check(req.HostConfig)
    for name, value in (("hostname", req.Hostname), ("domainname", req.Domainname)):
        # Written into /etc/hosts and /etc/hostname: a line break would add lines of its own.
        if value and any(c.isspace() or not c.isprintable() for c in value):
            raise InvalidArgument(f"invalid {name} format: {value!r}")
    mounts = req.HostConfig.Mounts or []
    if api is not None and api < (1, 43):
        req.HostConfig.Annotations = None  # a field older clients cannot have meant
    if api is not None and api < (1, 44):
        # dockerd refuses rather than drops it: a client that sets it counts on it.
        if any(m.Type == "bind" and m.BindOptions and m.BindOptions.ReadOnlyForceRecursive for m in mounts):
            raise InvalidArgument("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer")
        _before_1_44(req)
    if api is not None and api < (1, 45) and any(m.VolumeOptions and m.VolumeOptions.Subpath for m in mounts):
        raise InvalidArgument("VolumeOptions.Subpath needs API v1.45 or newer")
    if api is not None and api < (1, 40) and not req.HostConfig.IpcMode:
        req.HostConfig.IpcMode = "shareable"  # what clients before 1.40 had by default, and may join
    if api is not None and api < (1, 25):
        req.HostConfig.AutoRemove = False  # before 1.25 the client removes the container itself
    return req


def _before_1_44(req: CreateRequest) -> None:
    """What API 1.44 added to a create: older clients get dockerd's older meaning."""
    req.speaks_before_1_44()
    if req.Healthcheck and req.Healthcheck.get("StartInterval"):
        req.Healthcheck["StartInterval"] = 0
    endpoints = (req.NetworkingConfig or {}).get("EndpointsConfig")
    if isinstance(endpoints, dict):
        if len(endpoints) > 1:
            names = ", ".join(sorted(endpoints))
            raise InvalidArgument(f"Container cannot be connected to network endpoints: {names}")
        for cfg in endpoints.values():
            if isinstance(cfg, dict):
                cfg.pop("MacAddress", None)  # the endpoint's own address came with 1.44


def _seccomp(given: list[str]) -> str:
    """The profile the last `seccomp=` names, as dockerd reads it: `unconfined`, the default (none, empty or
    `builtin`) or a profile's JSON text, never a path on the daemon's host (the client reads the file)."""
    value = given[-1].strip() if given else ""
    if value in ("", "builtin"):
        return "default"
    if value != "unconfined" and not value.startswith("{"):
        raise InvalidArgument(f"Decoding seccomp profile failed: invalid character {value[0]!r} looking for "
                              "beginning of value")
    return value


def commit_config(body: Any) -> dict[str, Any] | None:
    """A commit body, the Config fields given over the container's, typed as create types them: the image
    keeps what is given, so a wrong type let through would break every container made from it."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidArgument("the commit body must be a container config object")
    body = go_keys(ContainerConfig, body, _EXTRAS)
    try:
        config = ContainerConfig.model_validate(body)
    except ValidationError as e:
        raise unmarshal_error(e, ContainerConfig, "Config") from None
    return config.model_dump(exclude_unset=True) or None


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def _merge_env(base: list[str], given: list[str]) -> list[str]:
    """Config.Env as dockerd merges it: the request's entries as given (a bare `KEY` too, which unsets the
    image's KEY), then the image's for keys the request does not name."""
    named = {_env_key(e) for e in given}
    return [*given, *(e for e in base if _env_key(e) not in named)]


def _system_paths(given: list[str] | None, default: list[str], privileged: bool) -> list[str] | None:
    """Masked or read-only paths as dockerd settles them at create: its defaults unless given, none if privileged."""
    if privileged:
        return None
    return list(default if given is None else given)


def runtime_options(req: CreateRequest, hostname: str, features: Mapping[str, Any]) -> dict[str, Any]:
    """The runtime's SpecOptions fields for this request."""
    hc = req.HostConfig
    mounts, tmpfs = host_mounts(hc.Binds or [], hc.Mounts or [], hc.Tmpfs or {},
                                ReadOnly(bool(features.get("recursive_readonly")), not req.read_only_top_only))
    security = hc.SecurityOpt or []
    seccomp = _seccomp([s[len("seccomp="):] for s in security if s.startswith(("seccomp=", "seccomp:"))])
    if hc.Privileged:
        seccomp = "unconfined"  # dockerd's: a privileged container has no filter, whatever profile it names
    return {
        "env": req.Env or [],
        "cwd": req.WorkingDir or None,
        "user": req.User or None,
        "additional_gids": hc.GroupAdd or [],
        # The host's UTS namespace brings the host's name; naming it would conflict.
        "hostname": None if hc.UTSMode == "host" else hostname,
        "domainname": req.Domainname or None,
        "tty": bool(req.Tty),
        "stdin": bool(req.OpenStdin),
        "readonly_rootfs": bool(hc.ReadonlyRootfs),
        "privileged": bool(hc.Privileged),
        "cap_add": hc.CapAdd or [],
        "cap_drop": hc.CapDrop or [],
        "no_new_privileges": hostchecks.no_new_privileges(security),
        "memory": hc.Memory or None,
        "memory_reservation": hc.MemoryReservation or None,
        "memory_swap": hc.MemorySwap or None,
        "cpu_shares": hc.CpuShares or None,
        "cpu_quota": hc.CpuQuota or None,
        "cpu_period": hc.CpuPeriod or None,
        "nano_cpus": hc.NanoCpus or None,
        "cpuset_cpus": hc.CpusetCpus or None,
        "cpuset_mems": hc.CpusetMems or None,
        "pids_limit": hc.PidsLimit or None,
        "blkio_weight": hc.BlkioWeight or None,
        "oom_score_adj": hc.OomScoreAdj or None,
        "memory_swappiness": hostchecks.swappiness(hc),
        "oom_kill_disable": bool(hc.OomKillDisable),
        "device_cgroup_rules": hc.DeviceCgroupRules or [],
        "block_io": {
            "weight": [{"path": d.Path, "rate": d.Weight} for d in hc.BlkioWeightDevice or []],
            "read_bps": [{"path": d.Path, "rate": d.Rate} for d in hc.BlkioDeviceReadBps or []],
            "write_bps": [{"path": d.Path, "rate": d.Rate} for d in hc.BlkioDeviceWriteBps or []],
            "read_iops": [{"path": d.Path, "rate": d.Rate} for d in hc.BlkioDeviceReadIOps or []],
            "write_iops": [{"path": d.Path, "rate": d.Rate} for d in hc.BlkioDeviceWriteIOps or []],
        },
        "ulimits": [{"name": u.Name, "soft": u.Soft, "hard": u.Hard} for u in hc.Ulimits or []],
        "mounts": mounts,
        "tmpfs": tmpfs,
        "devices": [":".join(p for p in (d.PathOnHost, d.PathInContainer or d.PathOnHost,
                                         d.CgroupPermissions or "rwm")) for d in hc.Devices or []],
        "sysctls": hc.Sysctls or {},
        "annotations": hc.Annotations or {},
        "pid_mode": "host" if hc.PidMode == "host" else None,
        "ipc_mode": "host" if hc.IpcMode == "host" else None,
        "uts_mode": "host" if hc.UTSMode == "host" else None,
        "cgroupns": cgroupns_mode(hc, features),
        "cgroup_parent": hc.CgroupParent or None,
        "shm_size": hc.ShmSize or DEFAULT_SHM_SIZE,
        "masked_paths": _system_paths(hc.MaskedPaths, DEFAULT_MASKED_PATHS, bool(hc.Privileged)),
        "readonly_paths": _system_paths(hc.ReadonlyPaths, DEFAULT_READONLY_PATHS, bool(hc.Privileged)),
        "seccomp": seccomp,
        # As dockerd: a shared bind needs a shared root for its mounts to travel back out.
        "rootfs_propagation": "shared" if any(o in ("shared", "rshared") for m in mounts for o in m["options"])
        else None,
    }


def cgroupns_mode(hc: HostConfigModel, features: Mapping[str, Any]) -> str:
    """dockerd's default: a private cgroup namespace on cgroup v2 hosts, the host's on v1."""
    return hc.CgroupnsMode or ("private" if str(features.get("cgroup_version")) == "2" else "host")


def hostname_for(req: CreateRequest, cid: str, joined: str | None = None) -> str:
    """`joined`: the hostname of the container whose network `container:<ref>` joins, which dockerd gives the
    joiner too (its /etc/hosts names that one)."""
    if req.Hostname:
        return req.Hostname
    if joined:
        return joined
    if req.HostConfig.NetworkMode == "host":
        return os.uname().nodename
    return cid[:12]


def inspect_config(req: CreateRequest, image: Image, hostname: str) -> dict[str, Any]:
    """Docker's Config as inspect shows it: the request with the image's defaults filled in."""
    ic = image.config
    if req.Entrypoint == []:
        # dockerd's merge: an empty (not null) Entrypoint drops the image's, and the Cmd is still the image's
        # unless given.
        entrypoint = None
        cmd = req.Cmd or ic.get("Cmd") or None
    elif req.Entrypoint is not None:
        entrypoint = [e for e in req.Entrypoint if e] or None
        cmd = req.Cmd or None
    else:
        entrypoint = ic.get("Entrypoint") or None
        cmd = req.Cmd or ic.get("Cmd") or None
    config: dict[str, Any] = {
        "Hostname": hostname,
        "Domainname": req.Domainname or "",
        "User": req.User or ic.get("User") or "",
        "AttachStdin": bool(req.AttachStdin),
        "AttachStdout": bool(req.AttachStdout),
        "AttachStderr": bool(req.AttachStderr),
        "Tty": bool(req.Tty),
        "OpenStdin": bool(req.OpenStdin),
        "StdinOnce": bool(req.StdinOnce),
        "Env": _merge_env(list(ic.get("Env") or []), req.Env or []),
        "Cmd": cmd,
        "Image": req.Image,
        "Volumes": {**(ic.get("Volumes") or {}), **(req.Volumes or {})} or None,
        "WorkingDir": _clean_path(req.WorkingDir or ic.get("WorkingDir") or ""),
        "Entrypoint": entrypoint,
        "OnBuild": req.OnBuild or ic.get("OnBuild") or None,
        "Labels": {**(ic.get("Labels") or {}), **(req.Labels or {})},
    }
    if req.ExposedPorts or ic.get("ExposedPorts"):
        config["ExposedPorts"] = {**(ic.get("ExposedPorts") or {}), **(req.ExposedPorts or {})}
    if req.NetworkDisabled:
        config["NetworkDisabled"] = True
    if req.MacAddress:
        config["MacAddress"] = req.MacAddress
    if req.ArgsEscaped or ic.get("ArgsEscaped"):
        config["ArgsEscaped"] = True
    if req.Shell or ic.get("Shell"):
        config["Shell"] = req.Shell or ic.get("Shell")
    stop_signal = req.StopSignal or ic.get("StopSignal")
    if stop_signal:
        parse_signal(stop_signal)
        config["StopSignal"] = stop_signal
    if req.StopTimeout is not None:
        config["StopTimeout"] = req.StopTimeout
    if req.Healthcheck or ic.get("Healthcheck"):
        config["Healthcheck"] = _merge_healthcheck(req.Healthcheck, ic.get("Healthcheck"))
    return config


def _merge_healthcheck(given: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any]:
    """dockerd's merge: each field the request leaves empty (or zero) is the image's."""
    if not given:
        return dict(image or {})
    merged = dict(given)
    for key in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if not merged.get(key) and (image or {}).get(key):
            merged[key] = (image or {})[key]
    # Every field of Go's HealthConfig is omitempty: what is left empty is left out, as dockerd shows it.
    return {key: value for key, value in merged.items() if value}


def _clean_path(path: str) -> str:
    """Go's filepath.Clean, which dockerd applies to a container's WorkingDir: POSIX keeps a leading `//`."""
    if not path:
        return path
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def inspect_host_config(req: CreateRequest, features: Mapping[str, Any]) -> dict[str, Any]:
    """HostConfig as given, with the fields clients read always present and dockerd's defaults filled in."""
    hc = req.HostConfig.model_dump(mode="json")
    for key, zero in _GO_ZEROS.items():
        if hc.get(key) is None:
            hc[key] = zero
    hc["NetworkMode"] = hc.get("NetworkMode") or "default"
    # The docker CLI always sends "no"; a client that sends nothing (docker-py) gets dockerd's empty name.
    policy = hc.get("RestartPolicy") or {}
    hc["RestartPolicy"] = {"Name": policy.get("Name") or "", "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}
    hc["AutoRemove"] = bool(hc.get("AutoRemove"))
    hc["PortBindings"] = hc.get("PortBindings") or {}
    for key in ("Privileged", "ReadonlyRootfs", "PublishAllPorts"):
        hc[key] = bool(hc.get(key))
    for key in ("Memory", "NanoCpus", "CpuShares"):
        hc[key] = hc.get(key) or 0
    privileged = bool(req.HostConfig.Privileged)
    hc["ShmSize"] = hc.get("ShmSize") or DEFAULT_SHM_SIZE
    hc["CgroupnsMode"] = cgroupns_mode(req.HostConfig, features)
    hc["IpcMode"] = hc.get("IpcMode") or "private"
    if req.HostConfig.SecurityOpt is None and (privileged or "host" in (hc["IpcMode"], hc.get("PidMode"))):
        # dockerd's: no SELinux label for a container that shares the host's processes or IPC.
        hc["SecurityOpt"] = ["label=disable"]
    hc["MaskedPaths"] = _system_paths(req.HostConfig.MaskedPaths, DEFAULT_MASKED_PATHS, privileged)
    hc["ReadonlyPaths"] = _system_paths(req.HostConfig.ReadonlyPaths, DEFAULT_READONLY_PATHS, privileged)
    # dockerd keeps "no limit" and "the kernel's" as null, whatever the client spelled them with.
    if (hc.get("PidsLimit") or 0) <= 0:
        hc["PidsLimit"] = None
    if hc.get("MemorySwappiness") == -1:
        hc["MemorySwappiness"] = None
    for key in _OMIT_EMPTY:
        if hc.get(key) is None:
            hc.pop(key, None)
    if hc.get("Mounts"):
        hc["Mounts"] = [_omit_empty(m, keep=("Target",)) for m in hc["Mounts"]]
    return hc


def _go_zero(annotation: Any) -> Any:
    """The zero value Go gives a field of this type where a client left it out: "", 0, false (slices, maps and
    structs stay null)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = typing.get_origin(args[0]) is typing.Annotated and typing.get_args(args[0])[0] or args[0]
    return {str: "", int: 0, bool: False}.get(kind)


# What inspect shows for the scalar fields a client (docker-py, curl) did not send, as Go's zero values: code
# reading `HostConfig["CpuQuota"] > 0` works on both daemons. Pointers dockerd keeps null stay so.
_GO_ZEROS: dict[str, Any] = {
    **{name: zero for name, f in HostConfigModel.model_fields.items()
       if (zero := _go_zero(f.annotation)) is not None and name not in ("PidsLimit", "MemorySwappiness", "Init")},
    "ConsoleSize": [0, 0],
    # Fields this engine refuses unless zero (engine/containers/fields.py): present at zero, as the CLI sends them.
    "Cgroup": "", "CpuCount": 0, "CpuPercent": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
    "IOMaximumBandwidth": 0, "IOMaximumIOps": 0, "KernelMemoryTCP": 0, "DeviceRequests": None,
}


# HostConfig's `omitempty` fields (Go leaves them out of inspect when unset), and a Mount's.
_OMIT_EMPTY = ("Init", "Mounts", "Sysctls", "Tmpfs", "StorageOpt", "Annotations")
_MAPS = ("Labels", "Options")


def _omit_empty(value: Any, keep: tuple[str, ...] = ()) -> Any:
    """An object of Go `omitempty` fields as Go writes it: without its zero values, at any depth. The entries
    of a map (a volume's `Labels`, a driver's `Options`) are data, kept as given (`volume-label=c`)."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key not in _MAPS:
            item = _omit_empty(item)
        if key in keep or item not in (None, "", 0, False, {}, []):
            out[key] = item
    return out
