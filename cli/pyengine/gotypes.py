"""The inspect results as the docker CLI's Go types see them, for `inspect --format`.

docker runs an inspect template first over the result decoded into its Go struct (a field the daemon
left out is then its zero value: "", 0, false, `map[]`, `[]`, a nil pointer printing `<nil>`; a map key
that is not there is `<no value>`; Go field names, not JSON ones), and only if that fails over the raw
JSON with missingkey=error. `typed` gives the first view: the structs users script against are described
here (Go field name, JSON name when it differs, kind); a field not described fails the typed run, which
sends the template to the raw one, as a field the Go struct lacks does in docker.
"""
from __future__ import annotations

from typing import Any

from cli.pyengine.gotemplate_funcs import Failure, Record, StringMap, go_time, text, to_json

# "GoName[=JsonName] kind[?]": kinds are s(tring) i(nt) b(ool) t(ime) d(uration) l(ist of scalars) m(ap of
# scalars) ms (map of strings) a(ny), *T (pointer to struct T), T (struct T), []*T, []T, map*T (map of pointers
# to T), mapT (map of structs T), map[]T (map of slices of T); "?" marks an omitempty JSON field. A type ending
# in "..." is not fully described: printed whole and marshalled by `json`, it is the raw JSON's; one ending in
# "~" has every field (for `json`) but embeds structs, so Go prints it nested where this cannot.
_TYPES: dict[str, str] = {
    "container.InspectResponse": (
        "ID=Id s, Created s, Path s, Args l, State *container.State, Image s, ResolvConfPath s, HostnamePath s, "
        "HostsPath s, LogPath s, Node a?, Name s, RestartCount i, Driver s, Platform s, MountLabel s, "
        "ProcessLabel s, AppArmorProfile s, ExecIDs l, HostConfig *container.HostConfig, "
        "GraphDriver storage.DriverData, SizeRw a?, SizeRootFs a?, Mounts []container.MountPoint, "
        "Config *container.Config, NetworkSettings *container.NetworkSettings, ImageManifestDescriptor a?, ~"),
    "container.State": ("Status s, Running b, Paused b, Restarting b, OOMKilled b, Dead b, Pid i, ExitCode i, "
                        "Error s, StartedAt s, FinishedAt s, Health *container.Health?"),
    "container.Health": "Status s, FailingStreak i, Log []*container.HealthcheckResult",
    "container.HealthcheckResult": "Start t, End t, ExitCode i, Output s",
    "container.Config": (
        "Hostname s, Domainname s, User s, AttachStdin b, AttachStdout b, AttachStderr b, ExposedPorts m?, "
        "Tty b, OpenStdin b, StdinOnce b, Env l, Cmd l, Healthcheck *container.HealthConfig?, ArgsEscaped b?, "
        "Image s, Volumes m, WorkingDir s, Entrypoint l, NetworkDisabled b?, MacAddress s?, OnBuild l, "
        "Labels ms, StopSignal s?, StopTimeout a?, Shell l?"),
    "container.HealthConfig": "Test l?, Interval d?, Timeout d?, StartPeriod d?, StartInterval d?, Retries i?",
    "container.HostConfig": (
        "Binds l, ContainerIDFile s, LogConfig container.LogConfig, NetworkMode s, "
        "PortBindings map[]nat.PortBinding, RestartPolicy container.RestartPolicy, AutoRemove b, VolumeDriver s, "
        "VolumesFrom l, ConsoleSize l, Annotations ms?, CapAdd l, CapDrop l, CgroupnsMode s, DNS=Dns l, "
        "DNSOptions=DnsOptions l, DNSSearch=DnsSearch l, ExtraHosts l, GroupAdd l, IpcMode s, Cgroup s, Links l, "
        "OomScoreAdj i, PidMode s, Privileged b, PublishAllPorts b, ReadonlyRootfs b, SecurityOpt l, "
        "StorageOpt ms?, Tmpfs ms?, UTSMode s, UsernsMode s, ShmSize i, Sysctls ms?, Runtime s?, Isolation s, "
        "CPUShares=CpuShares i, Memory i, NanoCPUs=NanoCpus i, CgroupParent s, BlkioWeight i, "
        "BlkioWeightDevice a, BlkioDeviceReadBps a, BlkioDeviceWriteBps a, BlkioDeviceReadIOps a, "
        "BlkioDeviceWriteIOps a, CPUPeriod=CpuPeriod i, CPUQuota=CpuQuota i, CPURealtimePeriod=CpuRealtimePeriod i, "
        "CPURealtimeRuntime=CpuRealtimeRuntime i, CpusetCpus s, CpusetMems s, Devices a, DeviceCgroupRules l, "
        "DeviceRequests a, KernelMemory i?, KernelMemoryTCP i?, MemoryReservation i, MemorySwap i, "
        "MemorySwappiness a, OomKillDisable a, PidsLimit a, Ulimits a, CPUCount=CpuCount i, "
        "CPUPercent=CpuPercent i, IOMaximumIOps i, IOMaximumBandwidth i, Mounts a?, MaskedPaths l, "
        "ReadonlyPaths l, Init a?, ~"),
    "container.LogConfig": "Type s, Config ms",
    "container.RestartPolicy": "Name s, MaximumRetryCount i",
    "nat.PortBinding": "HostIP=HostIp s, HostPort s",
    "container.MountPoint": "Type s?, Name s?, Source s, Destination s, Driver s?, Mode s, RW b, Propagation s",
    "storage.DriverData": "Data ms, Name s",
    "container.NetworkSettings": (
        "Bridge s, SandboxID s, SandboxKey s, Ports map[]nat.PortBinding, HairpinMode b, LinkLocalIPv6Address s, "
        "LinkLocalIPv6PrefixLen i, SecondaryIPAddresses a, SecondaryIPv6Addresses a, EndpointID s, Gateway s, "
        "GlobalIPv6Address s, GlobalIPv6PrefixLen i, IPAddress s, IPPrefixLen i, IPv6Gateway s, MacAddress s, "
        "Networks map*network.EndpointSettings, ~"),
    "network.EndpointSettings": (
        "IPAMConfig *network.EndpointIPAMConfig, Links l, Aliases l, MacAddress s, DriverOpts ms, GwPriority i, "
        "NetworkID s, EndpointID s, Gateway s, IPAddress s, IPPrefixLen i, IPv6Gateway s, GlobalIPv6Address s, "
        "GlobalIPv6PrefixLen i, DNSNames l"),
    "network.EndpointIPAMConfig": "IPv4Address s?, IPv6Address s?, LinkLocalIPs l?",
    "image.InspectResponse": (
        "ID=Id s, RepoTags l, RepoDigests l, Parent s, Comment s, Created s, DockerVersion s, Author s, "
        "Config *image.Config, Architecture s, Variant s, Os s, OsVersion s, Size i, VirtualSize i?, "
        "GraphDriver storage.DriverData, RootFS image.RootFS, Metadata image.Metadata, Descriptor a, Manifests a, "
        "..."),
    "image.Config": ("User s?, ExposedPorts m?, Env l?, Entrypoint l?, Cmd l?, Volumes m?, WorkingDir s?, "
                     "Labels ms?, StopSignal s?, ArgsEscaped b?, Healthcheck *container.HealthConfig?, OnBuild l?, "
                     "Shell l?, ~"),
    "image.RootFS": "Type s, Layers l?",
    "image.Metadata": "LastTagTime t",
    "network.Inspect": (
        "Name s, ID=Id s, Created t, Scope s, Driver s, EnableIPv4 b, EnableIPv6 b, IPAM network.IPAM, Internal b, "
        "Attachable b, Ingress b, ConfigFrom network.ConfigReference, ConfigOnly b, "
        "Containers mapnetwork.EndpointResource, Options ms, Labels ms, Peers l?, Services m?"),
    "network.IPAM": "Driver s, Options ms, Config []network.IPAMConfig",
    "network.IPAMConfig": "Subnet s?, IPRange s?, Gateway s?, AuxAddress=AuxiliaryAddresses ms?",
    "network.ConfigReference": "Network s",
    "network.EndpointResource": "Name s, EndpointID s, MacAddress s, IPv4Address s, IPv6Address s",
    "volume.Volume": ("ClusterVolume a?, CreatedAt s?, Driver s, Labels ms, Mountpoint s, Name s, Options ms, "
                      "Scope s, Status m?, UsageData a?"),
}

# A field is (Go name, JSON name, kind, omitempty); a type's fields and how complete they are.
_Field = tuple[str, str, str, bool]
_SCHEMAS: dict[str, tuple[list[_Field], str]] = {}


def _schema(type_name: str) -> tuple[list[_Field], str]:
    """The fields of a type and "all" (every field), "json" (every field, embedded structs) or "some"."""
    if type_name not in _SCHEMAS:
        fields, complete = [], "all"
        for spec in _TYPES[type_name].split(", "):
            if spec in ("...", "~"):
                complete = "some" if spec == "..." else "json"
                continue
            name, kind = spec.split(" ")
            go_name, _, json_name = name.partition("=")
            fields.append((go_name, json_name or go_name, kind.rstrip("?"), kind.endswith("?")))
        _SCHEMAS[type_name] = (fields, complete)
    return _SCHEMAS[type_name]


def go_duration(ns: int) -> str:
    """time.Duration's String(): 1h2m3.5s, 150ms, 0s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size or unit == "ns":
                return sign + _trim(ns / size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(rest / 1e9, 9)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    return f"{sign}{minutes}m{seconds}s" if minutes else f"{sign}{seconds}s"


def _trim(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


_ZERO_TIME = "0001-01-01 00:00:00 +0000 UTC"


def _wrap(kind: str, raw: Any) -> Any:
    if kind == "s":
        return raw if isinstance(raw, str) else ""
    if kind == "i":
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
    if kind == "b":
        return raw if isinstance(raw, bool) else False
    if kind == "t":
        return go_time(raw) if isinstance(raw, str) and raw else _ZERO_TIME
    if kind == "d":
        return go_duration(raw) if isinstance(raw, int) else "0s"
    if kind == "l":
        return raw if isinstance(raw, list) else []
    if kind == "m":
        # A Go map: fmt and encoding/json both print its keys sorted, whatever order the daemon sent.
        return dict(sorted(raw.items())) if isinstance(raw, dict) else {}
    if kind == "ms":
        return StringMap(raw if isinstance(raw, dict) else {})
    if kind == "a":
        return raw
    if kind.startswith("*"):
        return GoStruct(kind[1:], raw) if isinstance(raw, dict) else NilPointer(kind[1:])
    if kind.startswith("[]"):
        return [_wrap(kind[2:], item) for item in raw] if isinstance(raw, list) else []
    if kind.startswith("map[]"):
        return {k: _wrap("[]" + kind[5:], v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    if kind.startswith("map"):
        return {k: _wrap(kind[3:], v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return GoStruct(kind, raw if isinstance(raw, dict) else {}, pointer=False)


class GoStruct(Record):
    """A decoded Go struct (`pointer`: reached through a pointer): its fields by Go name, zero when the JSON
    had none."""

    def __init__(self, type_name: str, raw: dict[str, Any], pointer: bool = True) -> None:
        fields, self.complete = _schema(type_name)
        self.go_type = type_name
        self.raw = raw
        self.pointer = pointer
        super().__init__(f"*{type_name}" if pointer else type_name, {
            go: (lambda j=json_name, k=kind: _wrap(k, raw.get(j))) for go, json_name, kind, _ in fields})

    def printed(self, nested: bool) -> str:
        if nested and self.pointer:
            return "0xc000010000"  # fmt prints a pointer inside a value as its address
        if self.complete != "all":
            raise Failure(f"{self.type_name} is printed by the raw run")
        return "{" + " ".join(text(self.get(name, []), nested=True) for name in self.fields) + "}"

    def as_json(self) -> str:
        return to_json(_marshal(self.go_type, self.raw))


def _empty(value: Any) -> bool:
    return value is None or value is False or value == 0 and not isinstance(value, bool) or value in ("", [], {})


def _marshal_kind(kind: str, raw: Any) -> Any:
    """A field's value as Go's json.Marshal writes it after decoding `raw` into the field's type."""
    zero = {"s": "", "i": 0, "b": False, "t": "0001-01-01T00:00:00Z", "d": 0}
    if kind in zero:
        return zero[kind] if raw is None else raw
    if kind in ("l", "m", "ms", "a"):
        return _sorted_maps(raw)
    if kind.startswith("*"):
        return None if raw is None else _marshal(kind[1:], raw)
    if kind.startswith("[]"):
        return None if not isinstance(raw, list) else [_marshal_kind(kind[2:], item) for item in raw]
    if kind.startswith("map[]"):
        return None if not isinstance(raw, dict) else {k: _marshal_kind("[]" + kind[5:], raw[k]) for k in sorted(raw)}
    if kind.startswith("map"):
        return None if not isinstance(raw, dict) else {k: _marshal_kind(kind[3:], raw[k]) for k in sorted(raw)}
    return _marshal(kind, raw if isinstance(raw, dict) else {})


def _sorted_maps(value: Any) -> Any:
    """Go marshals a map with its keys sorted."""
    if isinstance(value, dict):
        return {k: _sorted_maps(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_maps(v) for v in value]
    return value


def _marshal(type_name: str, raw: Any) -> Any:
    """A struct as json.Marshal writes it: its fields in order, zero when absent, omitempty ones left out when
    empty; a struct not fully described keeps the daemon's members and their order, its described ones
    marshalled."""
    fields, complete = _schema(type_name)
    if not isinstance(raw, dict):
        return raw
    if complete == "some":
        kinds = {json_name: (kind, omitempty) for _, json_name, kind, omitempty in fields}
        out = {}
        for key, member in raw.items():
            kind, omitempty = kinds.get(key, ("", False))
            value = _marshal_kind(kind, member) if kind else member
            if not (omitempty and _empty(value)):
                out[key] = value
        return out
    out = {}
    for _, json_name, kind, omitempty in fields:
        value = _marshal_kind(kind, raw.get(json_name))
        if not (omitempty and _empty(value)):
            out[json_name] = value
    return out


class NilPointer(Record):
    """A nil *T: prints <nil>, is false, and a field of it fails (sending the template to the raw run)."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"*{type_name}", {})

    def get(self, name: str, args: list[Any]) -> Any:
        raise Failure(f"nil pointer evaluating {self.type_name}.{name}")

    def printed(self, nested: bool) -> str:
        return "<nil>"

    def truthy(self) -> bool:
        return False

    def as_json(self) -> str:
        return "null"


_KINDS = (("container.InspectResponse", ("State", "HostConfig")), ("image.InspectResponse", ("RootFS",)),
          ("network.Inspect", ("IPAM",)), ("volume.Volume", ("Mountpoint",)))


def typed(obj: Any) -> Any:
    """An inspect result as its Go struct, told by the fields only that kind has; as it is if none fits."""
    if isinstance(obj, dict):
        for type_name, keys in _KINDS:
            if all(key in obj for key in keys):
                return GoStruct(type_name, obj)
    return obj

