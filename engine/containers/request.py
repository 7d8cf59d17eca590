"""The pydantic models of a POST /containers/create body: Docker's Config with HostConfig embedded.

Every field a client may send is optional, and the types are the Go types dockerd decodes into
(gotypes.py). Which fields are honoured or refused is fields.py's business, not these models'.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from engine.containers.gotypes import OPEN, Int64, UInt16, UInt64, strslice
from engine.containers.mounts import Mount


class RestartPolicyModel(BaseModel):
    model_config = OPEN
    Name: str | None = None
    MaximumRetryCount: Int64 | None = None


class Ulimit(BaseModel):
    model_config = ConfigDict(strict=True)
    Name: str
    Soft: Int64
    Hard: Int64


class Device(BaseModel):
    model_config = OPEN
    PathOnHost: str
    PathInContainer: str | None = None
    CgroupPermissions: str | None = None


class WeightDevice(BaseModel):
    model_config = OPEN
    Path: str
    Weight: UInt16


class ThrottleDevice(BaseModel):
    model_config = OPEN
    Path: str
    Rate: UInt64


class PortBinding(BaseModel):
    model_config = OPEN
    HostIp: str | None = None
    HostPort: str | None = None


class LogConfigModel(BaseModel):
    model_config = OPEN
    Type: str | None = None
    Config: dict[str, str] | None = None


class HostConfigModel(BaseModel):
    model_config = OPEN
    Binds: list[str] | None = None
    ContainerIDFile: str | None = None
    LogConfig: LogConfigModel | None = None
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
    CpusetMems: str | None = None
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
    UsernsMode: str | None = None
    CgroupnsMode: str | None = None
    CgroupParent: str | None = None
    Dns: list[str] | None = None
    DnsOptions: list[str] | None = None
    DnsSearch: list[str] | None = None
    ExtraHosts: list[str] | None = None
    VolumesFrom: list[str] | None = None
    Links: list[str] | None = None
    MemorySwappiness: Int64 | None = None
    OomKillDisable: bool | None = None
    DeviceCgroupRules: list[str] | None = None
    BlkioWeightDevice: list[WeightDevice] | None = None
    BlkioDeviceReadBps: list[ThrottleDevice] | None = None
    BlkioDeviceWriteBps: list[ThrottleDevice] | None = None
    BlkioDeviceReadIOps: list[ThrottleDevice] | None = None
    BlkioDeviceWriteIOps: list[ThrottleDevice] | None = None
    ShmSize: Int64 | None = None
    Runtime: str | None = None
    Isolation: str | None = None
    VolumeDriver: str | None = None
    MaskedPaths: list[str] | None = None
    ReadonlyPaths: list[str] | None = None
    Annotations: dict[str, str] | None = None

    # StrSlice in Go: a lone string is taken for a one-element list, as dockerd takes it.
    _strslices = field_validator("CapAdd", "CapDrop", mode="before")(strslice)


class ContainerConfig(BaseModel):
    """Docker's Config: a create body's top level, and what a commit body overrides on the container's."""

    model_config = OPEN
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
    Healthcheck: dict[str, Any] | None = None
    ArgsEscaped: bool | None = None
    Image: str | None = None
    Volumes: dict[str, Any] | None = None
    WorkingDir: str | None = None
    Entrypoint: list[str] | None = None
    NetworkDisabled: bool | None = None
    MacAddress: str | None = None
    OnBuild: list[str] | None = None
    Labels: dict[str, str] | None = None
    StopSignal: str | None = None
    StopTimeout: Int64 | None = None
    Shell: list[str] | None = None

    _strslices = field_validator("Cmd", "Entrypoint", "Shell", mode="before")(strslice)


class CreateRequest(ContainerConfig):
    """Docker's Config with HostConfig (and NetworkingConfig) embedded."""

    NetworkingConfig: dict[str, Any] | None = None
    HostConfig: HostConfigModel = Field(default_factory=lambda: HostConfigModel())
    # Asked with an API before 1.44, when read-only binds were read-only at their top only (options.parse).
    _read_only_top_only: bool = PrivateAttr(default=False)

    @property
    def read_only_top_only(self) -> bool:
        return self._read_only_top_only

    def speaks_before_1_44(self) -> None:
        self._read_only_top_only = True

    @field_validator("HostConfig", mode="before")
    @classmethod
    def _host_config(cls, v: Any) -> Any:
        return {} if v is None else v
