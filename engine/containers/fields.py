"""Every field of a create body in the v1.50 spec, sorted into what this engine honours and what it refuses.

A field the engine cannot apply is refused with a 400 that names it, never accepted and dropped: a
client that asks for `--volumes-from` must not get a container without the volumes. The lists cover
the spec's ContainerConfig (`Config.`), HostConfig with its embedded Resources (`HostConfig.`),
NetworkingConfig and each network's EndpointSettings (`EndpointSettings.`); a unit test walks the
spec and fails on a field in neither list. A dotted path deeper than one level refuses a part of a
field whose other parts are honoured (through lists: `HostConfig.Mounts.X` is each mount's X).

The CLI sends a full object of zero values (CLIENT-FLOWS §5.4): a refused field counts as given only
when it holds something other than "", 0, false, null, [] or {} (recursively, so `[0, 0]` and
`{"Type": ""}` are unset too). Keys the spec does not know are ignored, as dockerd's JSON decoder does.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.errors import InvalidArgument

HONOURED: frozenset[str] = frozenset({
    "Config.Hostname", "Config.Domainname", "Config.User", "Config.AttachStdin", "Config.AttachStdout",
    "Config.AttachStderr", "Config.ExposedPorts", "Config.Tty", "Config.OpenStdin", "Config.StdinOnce",
    "Config.Env", "Config.Cmd", "Config.Healthcheck", "Config.Image", "Config.Volumes", "Config.WorkingDir",
    "Config.Entrypoint", "Config.NetworkDisabled", "Config.MacAddress", "Config.Labels", "Config.StopSignal",
    "Config.StopTimeout",
    # Kept in Config as dockerd keeps them: OnBuild and Shell are the builder's, ArgsEscaped matters on
    # Windows only; none changes how a Linux process runs.
    "Config.OnBuild", "Config.Shell", "Config.ArgsEscaped",
    "HostConfig.CpuShares", "HostConfig.Memory", "HostConfig.CgroupParent", "HostConfig.BlkioWeight",
    "HostConfig.CpuPeriod", "HostConfig.CpuQuota", "HostConfig.CpusetCpus", "HostConfig.CpusetMems",
    "HostConfig.Devices", "HostConfig.MemoryReservation", "HostConfig.MemorySwap", "HostConfig.NanoCpus",
    "HostConfig.Init", "HostConfig.PidsLimit", "HostConfig.Ulimits",
    "HostConfig.Binds", "HostConfig.NetworkMode", "HostConfig.PortBindings", "HostConfig.RestartPolicy",
    "HostConfig.AutoRemove", "HostConfig.Mounts", "HostConfig.ConsoleSize", "HostConfig.Annotations",
    "HostConfig.CapAdd", "HostConfig.CapDrop", "HostConfig.CgroupnsMode", "HostConfig.Dns",
    "HostConfig.DnsOptions", "HostConfig.DnsSearch", "HostConfig.ExtraHosts", "HostConfig.GroupAdd",
    "HostConfig.IpcMode", "HostConfig.OomScoreAdj", "HostConfig.PidMode", "HostConfig.Privileged",
    "HostConfig.PublishAllPorts", "HostConfig.ReadonlyRootfs", "HostConfig.SecurityOpt", "HostConfig.Tmpfs",
    "HostConfig.UTSMode", "HostConfig.ShmSize", "HostConfig.Sysctls", "HostConfig.MaskedPaths",
    "HostConfig.ReadonlyPaths", "HostConfig.VolumesFrom", "HostConfig.Links", "HostConfig.MemorySwappiness",
    "HostConfig.OomKillDisable", "HostConfig.DeviceCgroupRules", "HostConfig.BlkioWeightDevice",
    "HostConfig.BlkioDeviceReadBps", "HostConfig.BlkioDeviceWriteBps", "HostConfig.BlkioDeviceReadIOps",
    "HostConfig.BlkioDeviceWriteIOps",
    # The CLI writes the file itself; the daemon only keeps the path, as dockerd does.
    "HostConfig.ContainerIDFile",
    # json-file, local or none, with their options (engine/logs/settings.py checks them).
    "HostConfig.LogConfig",
    # runc or a runtime of daemon.json's `runtimes` (engine/runtimes.py); anything else is dockerd's 400.
    "HostConfig.Runtime",
    # Each takes the one value this engine has, as dockerd on Linux without options or plugins does: UsernsMode
    # "host", Isolation "default", VolumeDriver "local"; anything else is a 400.
    "HostConfig.UsernsMode", "HostConfig.Isolation",
    "HostConfig.VolumeDriver",
    "NetworkingConfig.EndpointsConfig",
    "EndpointSettings.IPAMConfig", "EndpointSettings.Aliases", "EndpointSettings.MacAddress",
    "EndpointSettings.Links",
    # Inspect's outputs: the engine fills them in and replaces what a client sent, as dockerd does.
    "EndpointSettings.NetworkID", "EndpointSettings.EndpointID", "EndpointSettings.Gateway",
    "EndpointSettings.IPAddress", "EndpointSettings.IPPrefixLen", "EndpointSettings.IPv6Gateway",
    "EndpointSettings.GlobalIPv6Address", "EndpointSettings.GlobalIPv6PrefixLen", "EndpointSettings.DNSNames",
})

# Refused field -> the docker CLI option that sets it (named in the error, so a CLI user knows what to drop).
REFUSED: Mapping[str, str] = {
    "HostConfig.CpuRealtimePeriod": "--cpu-rt-period",
    "HostConfig.CpuRealtimeRuntime": "--cpu-rt-runtime",
    "HostConfig.DeviceRequests": "--gpus, --device with a CDI name",
    "HostConfig.KernelMemoryTCP": "",
    "HostConfig.CpuCount": "--cpu-count",
    "HostConfig.CpuPercent": "--cpu-percent",
    "HostConfig.IOMaximumIOps": "--io-maxiops",
    "HostConfig.IOMaximumBandwidth": "--io-maxbandwidth",
    "HostConfig.Cgroup": "--cgroup",
    "HostConfig.StorageOpt": "--storage-opt",
    "EndpointSettings.DriverOpts": "--network driver-opt",
    "EndpointSettings.GwPriority": "--network gw-priority",
    "EndpointSettings.IPAMConfig.LinkLocalIPs": "--link-local-ip",
}

def struct_fields(section: str) -> frozenset[str]:
    """The top-level field names of one section of the spec ("Config", "HostConfig", "EndpointSettings")."""
    return frozenset(path.split(".")[1] for path in (*HONOURED, *REFUSED) if path.split(".")[0] == section)


def is_unset(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(is_unset(v) for v in value.values())
    if isinstance(value, list):
        return all(is_unset(v) for v in value)
    return value is None or value is False or value == 0 or value == ""


def _sections(body: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(section, where, object) for each part of the body a field path can start in."""
    yield "Config", "", body
    host_config = body.get("HostConfig")
    if isinstance(host_config, Mapping):
        yield "HostConfig", "HostConfig.", host_config
    networking = body.get("NetworkingConfig")
    if isinstance(networking, Mapping):
        yield "NetworkingConfig", "NetworkingConfig.", networking
        endpoints = networking.get("EndpointsConfig")
        if isinstance(endpoints, Mapping):
            for name, settings in endpoints.items():
                if isinstance(settings, Mapping):
                    yield "EndpointSettings", f"NetworkingConfig.EndpointsConfig.{name}.", settings


def lookup(obj: Any, keys: list[str]) -> list[Any]:
    """The values at `keys` below `obj`, through every element of the lists on the way (HostConfig.Mounts)."""
    if not keys:
        return [obj]
    if isinstance(obj, list):
        return [v for item in obj for v in lookup(item, keys)]
    if not isinstance(obj, Mapping):
        return []
    return lookup(obj.get(keys[0]), keys[1:])


def refuse_unsupported(body: Mapping[str, Any]) -> None:
    """A 400 naming the first refused field this create body sets."""
    for section, where, obj in _sections(body):
        for path, option in REFUSED.items():
            head, _, rest = path.partition(".")
            if head != section:
                continue
            if all(is_unset(value) for value in lookup(obj, rest.split("."))):
                continue
            hint = f" ({option})" if option else ""
            raise InvalidArgument(f"invalid container config: {where}{rest}{hint} is not supported by this engine")
