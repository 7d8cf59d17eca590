"""POST /containers/create bodies: validated at the edge, then turned into the runtime's options.

Bodies range from the CLI's full object full of zero values to docker-py's sparse
one: every field defaults, and "", 0, null and [] all mean "unset" (CLIENT-FLOWS §5.4).
"""
from __future__ import annotations

import os
import posixpath
from typing import Annotated, Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.containers.images import Image
from engine.errors import InvalidArgument
from runtime.client.signals import parse_signal

# Strict, as dockerd's JSON decoding is: "512" is not a number, 1 is not a boolean, 1.0 is not an integer.
_OPEN = ConfigDict(extra="allow", strict=True)
# The Go types dockerd decodes these fields into: anything outside them is a 400 there, never a spec value.
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
UInt32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
UInt64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


def _strslice(v: Any) -> Any:
    # Docker's StrSlice: a lone string is a one-element list.
    return [v] if isinstance(v, str) else v


class RestartPolicyModel(BaseModel):
    model_config = _OPEN
    Name: str | None = None
    MaximumRetryCount: Int64 | None = None


class Ulimit(BaseModel):
    model_config = ConfigDict(strict=True)
    Name: str
    Soft: Int64
    Hard: Int64


class BindOptionsModel(BaseModel):
    model_config = _OPEN
    Propagation: str | None = None


class TmpfsOptionsModel(BaseModel):
    model_config = _OPEN
    SizeBytes: Int64 | None = None
    Mode: UInt32 | None = None


class VolumeOptionsModel(BaseModel):
    model_config = _OPEN
    NoCopy: bool | None = None


class Mount(BaseModel):
    model_config = _OPEN
    Type: str = "bind"
    Source: str | None = None
    Target: str
    ReadOnly: bool | None = None
    BindOptions: BindOptionsModel | None = None
    TmpfsOptions: TmpfsOptionsModel | None = None
    VolumeOptions: VolumeOptionsModel | None = None


class Device(BaseModel):
    model_config = _OPEN
    PathOnHost: str
    PathInContainer: str | None = None
    CgroupPermissions: str | None = None


class PortBinding(BaseModel):
    model_config = _OPEN
    HostIp: str | None = None
    HostPort: str | None = None


class LogConfigModel(BaseModel):
    model_config = ConfigDict(strict=True)
    Type: str | None = None
    Config: dict[str, str] | None = None


class HostConfigModel(BaseModel):
    model_config = _OPEN
    LogConfig: LogConfigModel | None = None
    Binds: list[str] | None = None
    NetworkMode: str | None = None
    PortBindings: dict[str, list[PortBinding] | None] | None = None
    PublishAllPorts: bool | None = None
    RestartPolicy: RestartPolicyModel | None = None
    AutoRemove: bool | None = None
    Mounts: list[Mount] | None = None
    Memory: Int64 | None = None
    MemoryReservation: Int64 | None = None
    MemorySwap: Int64 | None = None
    NanoCpus: Int64 | None = None
    CpuShares: Int64 | None = None
    CpuQuota: Int64 | None = None
    CpuPeriod: Int64 | None = None
    CpusetCpus: str | None = None
    PidsLimit: Int64 | None = None
    BlkioWeight: Int64 | None = None
    OomScoreAdj: Int64 | None = None
    Ulimits: list[Ulimit] | None = None
    CapAdd: list[str] | None = None
    CapDrop: list[str] | None = None
    Privileged: bool | None = None
    ReadonlyRootfs: bool | None = None
    Init: bool | None = None
    ConsoleSize: list[UInt64] | None = None
    Tmpfs: dict[str, str] | None = None
    Devices: list[Device] | None = None
    Sysctls: dict[str, str] | None = None
    GroupAdd: list[str] | None = None
    SecurityOpt: list[str] | None = None
    PidMode: str | None = None
    IpcMode: str | None = None
    UTSMode: str | None = None


class CreateRequest(BaseModel):
    """Docker's Config with HostConfig (and NetworkingConfig) embedded."""

    model_config = _OPEN
    Hostname: str | None = None
    Domainname: str | None = None
    User: str | None = None
    AttachStdin: bool | None = None
    AttachStdout: bool | None = None
    AttachStderr: bool | None = None
    ExposedPorts: dict[str, Any] | None = None
    Tty: bool | None = None
    OpenStdin: bool | None = None
    StdinOnce: bool | None = None
    Env: list[str] | None = None
    Cmd: list[str] | None = None
    Image: str | None = None
    Volumes: dict[str, Any] | None = None
    WorkingDir: str | None = None
    Entrypoint: list[str] | None = None
    Labels: dict[str, str] | None = None
    StopSignal: str | None = None
    StopTimeout: Int64 | None = None
    NetworkingConfig: dict[str, Any] | None = None
    HostConfig: HostConfigModel = Field(default_factory=lambda: HostConfigModel())

    _strslices = field_validator("Cmd", "Entrypoint", mode="before")(_strslice)

    @field_validator("HostConfig", mode="before")
    @classmethod
    def _host_config(cls, v: Any) -> Any:
        return {} if v is None else v


def parse(body: Any) -> CreateRequest:
    if not isinstance(body, dict):
        raise InvalidArgument("invalid container config: expected a JSON object")
    try:
        return CreateRequest.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidArgument(f"invalid container config: {where}: {err['msg']}") from None


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def _merge_env(base: list[str], given: list[str]) -> list[str]:
    out = {_env_key(e): e for e in base}
    out.update({_env_key(e): e for e in given if "=" in e})
    for e in given:
        if "=" not in e:
            out.pop(e, None)
    return list(out.values())


def _split_bind(spec: str) -> tuple[str, str, list[str]]:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if not parts[1].startswith("/"):
        raise InvalidArgument(f"invalid volume specification: '{spec}': mount path must be absolute")
    return parts[0], parts[1], parts[2].split(",") if len(parts) == 3 and parts[2] else []


def _bind(spec: str) -> dict[str, Any]:
    """-v "/host:dst[:opts]": a bind mount of a host path."""
    src, dst, opts = _split_bind(spec)
    options = ["rbind", "ro" if "ro" in opts else "rw"]
    options += [o for o in opts if o in _PROPAGATIONS]
    # Docker creates a missing -v source; --mount (below) refuses instead.
    try:
        os.makedirs(src, exist_ok=True)
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise InvalidArgument(f"error while creating mount source path '{src}': {e}") from None
    return {"type": "bind", "source": src, "destination": dst, "options": options}


def _mount(m: Mount) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """A spec mount, or a tmpfs entry (destination, options)."""
    if m.Type == "bind":
        if not m.Source or not os.path.isabs(m.Source):
            raise InvalidArgument(f'invalid mount config for type "bind": invalid mount path: {m.Source!r}')
        if not os.path.exists(m.Source):
            raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: '
                                  f"{m.Source}")
        options = ["rbind", "ro" if m.ReadOnly else "rw"]
        if m.BindOptions and m.BindOptions.Propagation:
            options.append(m.BindOptions.Propagation)
        return {"type": "bind", "source": m.Source, "destination": m.Target, "options": options}, None
    if m.Type == "volume":
        return None, None  # volume_mounts() below
    if m.Type == "tmpfs":
        opts = []
        if m.TmpfsOptions and m.TmpfsOptions.SizeBytes:
            opts.append(f"size={m.TmpfsOptions.SizeBytes}")
        if m.TmpfsOptions and m.TmpfsOptions.Mode:
            opts.append(f"mode={m.TmpfsOptions.Mode:o}")
        return None, (m.Target, ",".join(opts))
    raise InvalidArgument(f"mount type {m.Type!r} is not supported yet")


def runtime_options(req: CreateRequest, hostname: str) -> dict[str, Any]:
    """The runtime's SpecOptions fields for this request."""
    hc = req.HostConfig
    mounts = [_bind(b) for b in hc.Binds or [] if b.startswith("/")]
    tmpfs: dict[str, str] = dict(hc.Tmpfs or {})
    for m in hc.Mounts or []:
        spec_mount, tmp = _mount(m)
        if spec_mount:
            mounts.append(spec_mount)
        if tmp:
            tmpfs[tmp[0]] = tmp[1]
    security = hc.SecurityOpt or []
    seccomp = next((s.split("=", 1)[1] for s in security if s.startswith(("seccomp=", "seccomp:"))), "default")
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
        "no_new_privileges": any(s.startswith("no-new-privileges") and not s.endswith("false") for s in security),
        "memory": hc.Memory or None,
        "memory_reservation": hc.MemoryReservation or None,
        "memory_swap": hc.MemorySwap or None,
        "cpu_shares": hc.CpuShares or None,
        "cpu_quota": hc.CpuQuota or None,
        "cpu_period": hc.CpuPeriod or None,
        "nano_cpus": hc.NanoCpus or None,
        "cpuset_cpus": hc.CpusetCpus or None,
        "pids_limit": hc.PidsLimit or None,
        "blkio_weight": hc.BlkioWeight or None,
        "oom_score_adj": hc.OomScoreAdj or None,
        "ulimits": [{"name": u.Name, "soft": u.Soft, "hard": u.Hard} for u in hc.Ulimits or []],
        "mounts": mounts,
        "tmpfs": tmpfs,
        "devices": [":".join(p for p in (d.PathOnHost, d.PathInContainer or d.PathOnHost,
                                         d.CgroupPermissions or "rwm")) for d in hc.Devices or []],
        "sysctls": hc.Sysctls or {},
        "pid_mode": "host" if hc.PidMode == "host" else None,
        "ipc_mode": "host" if hc.IpcMode == "host" else None,
        "uts_mode": "host" if hc.UTSMode == "host" else None,
        "seccomp": seccomp,
    }


def volume_mounts(req: CreateRequest, image_volumes: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The volumes a container mounts: named ones (-v name:/dst, --mount type=volume) and anonymous ones
    (--mount without a source, -v /dst, the image's VOLUME), as {name (None: anonymous), destination,
    read_only, copy (fill a new volume from the image)}."""
    hc = req.HostConfig
    out: list[dict[str, Any]] = []
    for b in hc.Binds or []:
        if b.startswith("/"):
            continue
        name, dst, opts = _split_bind(b)
        out.append({"name": name, "destination": posixpath.normpath(dst), "read_only": "ro" in opts,
                    "copy": "nocopy" not in opts})
    for m in hc.Mounts or []:
        if m.Type != "volume":
            continue
        if not posixpath.isabs(m.Target):
            raise InvalidArgument(f'invalid mount config for type "volume": invalid mount path: \'{m.Target}\' '
                                  "mount path must be absolute")
        out.append({"name": m.Source or None, "destination": posixpath.normpath(m.Target),
                    "read_only": bool(m.ReadOnly), "copy": not (m.VolumeOptions and m.VolumeOptions.NoCopy)})
    taken = {v["destination"] for v in out}
    taken |= {posixpath.normpath(_split_bind(b)[1]) for b in hc.Binds or [] if b.startswith("/")}
    taken |= {posixpath.normpath(m.Target) for m in hc.Mounts or []}
    taken |= {posixpath.normpath(t) for t in hc.Tmpfs or {}}
    for dst in list(req.Volumes or {}) + list(image_volumes or {}):
        if not posixpath.isabs(dst):
            raise InvalidArgument(f"invalid volume specification: '{dst}': mount path must be absolute")
        dst = posixpath.normpath(dst)
        if dst not in taken:
            taken.add(dst)
            out.append({"name": None, "destination": dst, "read_only": False, "copy": True})
    return out


def hostname_for(req: CreateRequest, cid: str) -> str:
    if req.Hostname:
        return req.Hostname
    if req.HostConfig.NetworkMode == "host":
        return os.uname().nodename
    return cid[:12]


def inspect_config(req: CreateRequest, image: Image, hostname: str) -> dict[str, Any]:
    """Docker's Config as inspect shows it: the request with the image's defaults filled in."""
    ic = image.config
    if req.Entrypoint is not None:
        entrypoint = [e for e in req.Entrypoint if e] or None
        cmd = req.Cmd or None
    else:
        entrypoint = ic.get("Entrypoint") or None
        cmd = req.Cmd or ic.get("Cmd") or None
    extra = req.model_extra or {}
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
        "Volumes": req.Volumes or ic.get("Volumes") or None,
        "WorkingDir": req.WorkingDir or ic.get("WorkingDir") or "",
        "Entrypoint": entrypoint,
        "OnBuild": ic.get("OnBuild") or None,
        "Labels": {**(ic.get("Labels") or {}), **(req.Labels or {})},
    }
    if req.ExposedPorts or ic.get("ExposedPorts"):
        config["ExposedPorts"] = req.ExposedPorts or ic.get("ExposedPorts")
    stop_signal = req.StopSignal or ic.get("StopSignal")
    if stop_signal:
        parse_signal(stop_signal)
        config["StopSignal"] = stop_signal
    if req.StopTimeout is not None:
        config["StopTimeout"] = req.StopTimeout
    if extra.get("Healthcheck") or ic.get("Healthcheck"):
        config["Healthcheck"] = extra.get("Healthcheck") or ic.get("Healthcheck")
    return config


def inspect_host_config(req: CreateRequest) -> dict[str, Any]:
    """HostConfig as given, with the fields clients read always present."""
    hc = req.HostConfig.model_dump(mode="json")
    hc["NetworkMode"] = hc.get("NetworkMode") or "default"
    hc["RestartPolicy"] = hc.get("RestartPolicy") or {"Name": "no", "MaximumRetryCount": 0}
    hc["AutoRemove"] = bool(hc.get("AutoRemove"))
    hc["PortBindings"] = hc.get("PortBindings") or {}
    for key in ("Privileged", "ReadonlyRootfs"):
        hc[key] = bool(hc.get(key))
    for key in ("Memory", "NanoCpus", "CpuShares"):
        hc[key] = hc.get(key) or 0
    return hc


def inspect_mounts(host_config: dict[str, Any], volumes: list[dict[str, Any]],
                   mountpoint: Callable[[str], str]) -> list[dict[str, Any]]:
    """A container's bind mounts and volumes, in inspect's Mounts shape."""
    out = [{"Type": "volume", "Name": v["name"], "Source": mountpoint(v["name"]), "Destination": v["destination"],
            "Driver": "local", "Mode": "ro" if v["read_only"] else "z", "RW": not v["read_only"],
            "Propagation": ""} for v in volumes]
    for b in host_config.get("Binds") or []:
        if not b.startswith("/"):
            continue  # a named volume: listed above
        parts = b.split(":")
        mode = parts[2] if len(parts) == 3 else ""
        out.append({"Type": "bind", "Source": parts[0], "Destination": posixpath.normpath(parts[1]), "Mode": mode,
                    "RW": "ro" not in mode.split(","), "Propagation": "rprivate"})
    for m in host_config.get("Mounts") or []:
        if m.get("Type") == "bind":
            propagation = (m.get("BindOptions") or {}).get("Propagation") or "rprivate"
            out.append({"Type": "bind", "Source": m.get("Source"), "Destination": m.get("Target"), "Mode": "",
                        "RW": not m.get("ReadOnly"), "Propagation": propagation})
    return out
