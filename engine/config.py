"""pyengined configuration: dockerd-style daemon.json, then flags."""
from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from engine.api.timestamps import duration_ns
from engine.errors import InvalidArgument
from engine.networks import ipam
from engine import log
from engine import runtimes as runtimes_mod
from engine.logs import journald
from engine.events_journal import Retention
from engine.storage.settings import AUTO_REMOVED, DEFAULT_RETENTION, StorageBudget, parse_duration

DEFAULT_HOST = "unix:///run/pyengine/engine.sock"
DEFAULT_DATA_ROOT = "/var/lib/pyengine/engine"
DEFAULT_EXEC_ROOT = "/run/pyengine/engine"
DEFAULT_RUNTIME_ADDRESS = "/run/pyengine/runtime.sock"
DEFAULT_RUNTIME_NAMESPACE = "pyengine"
DEFAULT_JOURNALD_SOCKET = journald.SOCKET
# The value of each dockerd switch that says what this engine does, and why another cannot be honoured.
_FIXED: dict[str, tuple[bool, str]] = {
    "live_restore": (True, "containers keep running across pyengined's restarts (their monitors are not its children)"),
    "iptables": (True, "netavark writes the rules of networks and published ports"),
    "ip_forward": (True, "netavark turns IP forwarding on for bridge networks"),
    "ip_masq": (True, "netavark masquerades what leaves bridge networks (netavark 1.4 cannot turn it off)"),
    "icc": (True, "containers on a network reach each other (netavark 1.4 cannot keep them apart)"),
    "userland_proxy": (False, "published ports are forwarded by the kernel's NAT, with no proxy process"),
}
# dockerd's check of a --dns-search domain: labels of letters, digits, '-' and '_', at most 255 characters.
_DOMAIN = re.compile(r"(?=.{1,255}$)([A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}")


class EventsRetention(BaseModel):
    """daemon.json's "events-retention": the newest `count` events, none older than `age` (a Go duration; "0": no
    age bound)."""
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=Retention.count, ge=1)
    age: str = "168h"

    @field_validator("age")
    @classmethod
    def _duration(cls, v: str) -> str:
        ns = duration_ns(v)
        if v != "0" and (ns is None or ns < 0):
            raise ValueError(f"{v!r} is not a duration (e.g. 168h, 30m)")
        return v

    def retention(self) -> Retention:
        return Retention(self.count, 0.0 if self.age == "0" else (duration_ns(self.age) or 0) / 1e9)


class DefaultUlimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Name: str = ""
    Soft: int
    Hard: int

    @model_validator(mode="after")
    def _limits(self) -> DefaultUlimit:
        if self.Soft > self.Hard and self.Hard != -1:
            raise ValueError(f"ulimit {self.Name}: soft limit {self.Soft} is greater than hard limit {self.Hard}")
        return self


class AddressPool(BaseModel):
    """One of daemon.json's default-address-pools: subnets of `size` bits cut from `base`."""
    model_config = ConfigDict(extra="forbid")
    base: str
    size: int

    @model_validator(mode="after")
    def _pool(self) -> AddressPool:
        try:
            ipam.Pool.of(self.base, self.size)
        except InvalidArgument as e:
            raise ValueError(e.message) from None
        return self

    def pool(self) -> ipam.Pool:
        return ipam.Pool.of(self.base, self.size)


class Config(BaseModel):
    # daemon.json keys are dockerd's (kebab-case). A key this engine does not know stops the start, as dockerd's
    # does: taken and ignored, a dockerd setting (`ip`, `iptables`, `icc`...) would be believed in force.
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    hosts: list[str] = Field(default_factory=lambda: [DEFAULT_HOST])
    data_root: str = Field(default=DEFAULT_DATA_ROOT, alias="data-root")
    exec_root: str = Field(default=DEFAULT_EXEC_ROOT, alias="exec-root")
    runtime_address: str = Field(default=DEFAULT_RUNTIME_ADDRESS, alias="runtime-address")
    runtime_namespace: str = Field(default=DEFAULT_RUNTIME_NAMESPACE, alias="runtime-namespace")
    registry_mirrors: list[str] = Field(default_factory=list, alias="registry-mirrors")
    insecure_registries: list[str] = Field(default_factory=list, alias="insecure-registries")
    log_level: str = Field(default="info", alias="log-level")
    # dockerd's {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}: what a container that sets no such
    # ulimit of its own gets (and inspect's HostConfig.Ulimits shows).
    default_ulimits: dict[str, DefaultUlimit] = Field(default_factory=dict, alias="default-ulimits")
    # dockerd's container defaults: /dev/shm's size for a container that names none (RAM units: 128M is MiB),
    # no-new-privileges for every container, and an init as PID 1 for those that do not set --init themselves.
    default_shm_size: int | None = Field(default=None, alias="default-shm-size")
    no_new_privileges: bool = Field(default=False, alias="no-new-privileges")
    init: bool = False
    # dockerd's namespace defaults for containers that name no mode of their own: IPC private or shareable,
    # cgroup namespace private or host (unset: host on cgroup v1, private on v2, as dockerd).
    default_ipc_mode: Literal["private", "shareable"] | None = Field(default=None, alias="default-ipc-mode")
    default_cgroupns_mode: Literal["private", "host"] | None = Field(default=None, alias="default-cgroupns-mode")
    # dockerd's resolver defaults, for a container that sets no --dns, --dns-search or --dns-option of its own.
    dns: list[str] = Field(default_factory=list)
    dns_search: list[str] = Field(default_factory=list, alias="dns-search")
    dns_opts: list[str] = Field(default_factory=list, alias="dns-opts")
    # dockerd's `ip`: the host address the default bridge publishes ports on when a binding names none.
    ip: str | None = None
    # dockerd's: where networks made without a subnet (and the default bridge, without bip) take theirs from, and
    # the default bridge's MTU.
    default_address_pools: list[AddressPool] = Field(default_factory=list, alias="default-address-pools")
    mtu: int = Field(default=1500)
    # dockerd's `storage-driver` and `exec-opts`, taken where they name what this engine does: containers' files on
    # pyruntimed's overlayfs snapshotter (dockerd's overlay2, containerd's overlayfs), cgroups through cgroupfs.
    storage_driver: str | None = Field(default=None, alias="storage-driver")
    exec_opts: list[str] = Field(default_factory=list, alias="exec-opts")
    # dockerd's `debug`: the debug log level, whatever log-level says.
    debug: bool = False
    # dockerd switches for what this engine always does, taken when they say so and refused otherwise (_FIXED).
    live_restore: StrictBool | None = Field(default=None, alias="live-restore")
    iptables: StrictBool | None = None
    ip_forward: StrictBool | None = Field(default=None, alias="ip-forward")
    ip_masq: StrictBool | None = Field(default=None, alias="ip-masq")
    icc: StrictBool | None = None
    userland_proxy: StrictBool | None = Field(default=None, alias="userland-proxy")
    socket_group: str | None = Field(default=None, alias="group")
    # dockerd's: a file holding the daemon's pid while it runs (the data root's own lock keeps one engine per root).
    pidfile: str | None = None
    # The default bridge: its Linux interface (dockerd's is docker0; ours must not collide with it) and,
    # like dockerd's bip, its gateway address with the subnet's length. Unset: the first free default pool.
    bridge_name: str = Field(default="pyengine0", alias="bridge-name")
    bip: str | None = None
    # dockerd's TLS keys: tls serves TLS on tcp hosts, tlsverify also requires client certificates signed by
    # tlscacert. Unset paths are dockerd's: ca.pem, cert.pem, key.pem in $DOCKER_CERT_PATH or ~/.docker.
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    tls_insecure_tcp: bool = Field(default=False, alias="insecure-tcp")
    log_driver: str = Field(default="json-file", alias="log-driver")
    log_opts: dict[str, str] = Field(default_factory=dict, alias="log-opts")
    # Where journald listens, for the journald log driver: another path lets tests (and hosts running their
    # journal elsewhere) point it away from the host's.
    journald_socket: str = Field(default=DEFAULT_JOURNALD_SOCKET, alias="journald-socket")
    # dockerd's: HOST:PORT of a plain-HTTP listener serving /metrics only (the API sockets serve it too).
    metrics_addr: str | None = Field(default=None, alias="metrics-addr")
    labels: list[str] = Field(default_factory=list)
    # dockerd's defaults; each pull's (push's) bound, under the runtime's daemon-wide max_concurrent_downloads.
    max_concurrent_downloads: int = Field(default=3, ge=1, alias="max-concurrent-downloads")
    max_concurrent_uploads: int = Field(default=5, ge=1, alias="max-concurrent-uploads")
    events_retention: EventsRetention = Field(default_factory=EventsRetention, alias="events-retention")
    # OCI runtimes by name besides the stock runc (engine/runtimes.py).
    runtimes: dict[str, runtimes_mod.RuntimeEntry] = Field(default_factory=dict)
    default_runtime: str | None = Field(default=None, alias="default-runtime")
    # dockerd's experimental mode: reported by /version, /info and every answer's Docker-Experimental header;
    # it unlocks what dockerd gates behind it (a build's squash).
    experimental: bool = False

    @model_validator(mode="after")
    def _runtimes(self) -> Config:
        runtimes_mod.check(self.runtimes, self.default_runtime)
        for name, ulimit in self.default_ulimits.items():
            if ulimit.Name and ulimit.Name != name:
                raise ValueError(f"default-ulimits: {name!r} names the ulimit {ulimit.Name!r}")
            ulimit.Name = name
        return self

    @field_validator("default_shm_size", mode="before")
    @classmethod
    def _shm_size(cls, v: object) -> int:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?", str(v).strip(), re.IGNORECASE)
        size = int(float(m.group(1)) * 1024 ** " kmgtp".index(m.group(2).lower() or " ")) if m else 0
        if isinstance(v, bool) or size <= 0:
            raise ValueError(f"invalid default-shm-size {v!r}: expected a size such as 64M")
        return size

    @field_validator("dns")
    @classmethod
    def _dns(cls, v: list[str]) -> list[str]:
        for server in v:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"IP address is not correctly formatted: {server}") from None
        return v

    @field_validator("dns_search")
    @classmethod
    def _dns_search(cls, v: list[str]) -> list[str]:
        for domain in v:
            if domain != "." and not _DOMAIN.fullmatch(domain.removesuffix(".")):
                raise ValueError(f"{domain} is not a valid domain")
        return v

    @field_validator("storage_driver")
    @classmethod
    def _storage_driver(cls, v: str | None) -> str | None:
        if v is not None and v not in ("overlay2", "overlayfs"):
            raise ValueError(f"{v} is not supported: containers' files are on pyruntimed's overlayfs snapshotter "
                             "(dockerd's overlay2)")
        return v

    @field_validator("exec_opts")
    @classmethod
    def _exec_opts(cls, v: list[str]) -> list[str]:
        for opt in v:
            key, eq, value = opt.partition("=")
            if not eq or key.strip().lower() != "native.cgroupdriver":
                raise ValueError(f"{opt} is not supported: the only exec option is native.cgroupdriver")
            if value.strip() != "cgroupfs":
                raise ValueError(f"native.cgroupdriver option {value.strip()} not supported: pyruntimed drives "
                                 "cgroups through cgroupfs")
        return v

    @field_validator("mtu")
    @classmethod
    def _mtu(cls, v: int) -> int:
        if not 68 <= v <= 65535:
            raise ValueError(f"invalid default MTU: {v} (68 to 65535)")
        return v

    @field_validator("ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.IPv4Address(v)
            except ValueError:
                # Published ports are IPv4 here (ports.py): an IPv6 default would have nothing to bind.
                raise ValueError(f"{v} is not an IPv4 address") from None
        return v

    @field_validator("default_ipc_mode", mode="before")
    @classmethod
    def _ipc_mode(cls, v: object) -> object:
        if v not in (None, "private", "shareable"):
            raise ValueError(f'IPC mode "{v}" is not supported as default value; use "shareable" or "private"')
        return v

    @field_validator("default_cgroupns_mode", mode="before")
    @classmethod
    def _cgroupns_mode(cls, v: object) -> object:
        if v not in (None, "private", "host"):
            raise ValueError(f'default cgroup namespace mode ({v}) is invalid; use "host" or "private"')
        return v

    @field_validator("live_restore", "iptables", "ip_forward", "ip_masq", "icc", "userland_proxy")
    @classmethod
    def _fixed(cls, v: bool | None, info: ValidationInfo) -> bool | None:
        done, why = _FIXED[info.field_name or ""]
        if v is not None and v != done:
            raise ValueError(f"{str(v).lower()} is not supported: {why}")
        return v

    @property
    def effective_log_level(self) -> str:
        return "debug" if self.debug else self.log_level

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        if v not in log.LEVELS:
            raise ValueError(f"unable to parse logging level: {v}")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        bad = [label for label in v if "=" not in label or label.startswith("=")]
        if bad:
            raise ValueError(f"labels must be key=value: {', '.join(bad)}")
        return v
    # OTLP/HTTP base URL for traces (docs/operations.md "Tracing"); unset: OTEL_EXPORTER_OTLP_ENDPOINT, or off.
    otel_endpoint: str | None = Field(default=None, alias="otel-exporter-otlp-endpoint")
    # Disk budgets (docs/operations.md): none set means no automatic collection.
    storage_budget: StorageBudget | None = Field(default=None, alias="storage-budget")
    removed_logs_retention: float = Field(default=DEFAULT_RETENTION, alias="removed-logs-retention")
    # Which removed containers inspect answers for while their logs are kept, as `docker logs` needs (it
    # inspects first): "auto-removed" (those of `run --rm`, by ID only), true (any, by ID or name), or false
    # (none: dockerd's 404, which docker-py's reload() after remove() and scripts rely on).
    removed_logs_inspect: bool | Literal["auto-removed"] = Field(default=AUTO_REMOVED, alias="removed-logs-inspect")

    @field_validator("removed_logs_retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> float:
        return parse_duration(value)


# Set both in daemon.json and by a flag, these are refused as dockerd refuses them, rather than one silently
# winning: which hosts serve and with what TLS is not something to guess.
EXCLUSIVE = ("hosts", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey")


def _validated(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        # Name the key as daemon.json spells it: "storage-budget.high: ...".
        raise ValueError("; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
                                   for err in e.errors())) from None


def load(path: str | None, overrides: dict[str, Any]) -> Config:
    data: dict[str, Any] = {}
    if path:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a JSON object")
    unknown = sorted(set(data) - {field.alias or name for name, field in Config.model_fields.items()})
    if unknown:
        raise ValueError("the following directives don't match any configuration option: " + ", ".join(unknown))
    both = [key for key in EXCLUSIVE if key in data and overrides.get(key) not in (None, [])]
    if both:
        raise ValueError("the following directives are specified both as a flag and in the configuration file: "
                         + ", ".join(f"{k} (from flag: {overrides[k]}, from file: {data[k]})" for k in both))
    cfg = _validated(data)
    for key, value in overrides.items():
        if value is None or value == []:
            continue
        if key not in ("runtimes", "default_runtime"):  # those two are checked together, below
            flag = _validated({Config.model_fields[key].alias or key: value})  # checked as the file's key is
        if key == "runtimes":
            cfg.runtimes = {**cfg.runtimes, **value}
        elif key == "default_address_pools":  # the flags' pools in place of the file's, in their order
            cfg.default_address_pools = flag.default_address_pools
        elif isinstance(value, list):
            setattr(cfg, key, list(dict.fromkeys(getattr(cfg, key) + value)) if key != "hosts" else value)
        else:
            setattr(cfg, key, value)
    runtimes_mod.check(cfg.runtimes, cfg.default_runtime)
    return cfg
