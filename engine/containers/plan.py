"""A container create request interpreted once, with no daemon in sight.

Everything Docker decides about a new container from the request, its image and the host's
kernel is decided here: the hostname, the inspect views (Config with the image's defaults,
HostConfig), the process (Path/Args are the merged Entrypoint and Cmd, computed here rather
than read back from the runtime's spec), the runtime's spec options, the checks dockerd makes
and its warnings. What needs the daemons (the network's namespace, volumes, the runtime
container) is added by the create step, which only carries the plan out.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.containers.health import ON_FAILURE_ACTIONS, ON_FAILURE_LABEL
from engine.containers.hostlimits import clamp_cpu_shares, discard_memory_policy, discard_unsupported
from engine.containers.images import Image
from engine.containers.namespaces import ipc_mode, runtime_ipc_mode
from engine.containers.options import (
    hostname_for,
    inspect_config,
    inspect_host_config,
    runtime_options,
)
from engine.containers.request import CreateRequest, RestartPolicyModel
from engine.containers.resources import check_limits, restart_policy
from engine.errors import InvalidArgument
from engine.networks.ports import requested as requested_ports


@dataclass(frozen=True)
class NetworkChoice:
    """NetworkMode read once: `container:<ref>` joins another container's namespace."""

    mode: str
    joins: str | None  # the container named by `container:<ref>`
    endpoints: dict[str, Any] | None
    links: list[str]  # HostConfig.Links: legacy links on the default bridge


@dataclass
class CreatePlan:
    hostname: str
    config: dict[str, Any]  # Docker's Config as inspect shows it
    host_config: dict[str, Any]  # HostConfig as inspect shows it
    path: str
    args: list[str]
    options: dict[str, Any]  # the runtime's spec options, before netns and volume mounts
    init: bool
    network: NetworkChoice
    image_volumes: dict[str, Any] | None
    warnings: list[str]


def network_choice(req: CreateRequest) -> NetworkChoice:
    # A disabled network is dockerd's "none": a namespace with loopback only.
    mode = "none" if req.NetworkDisabled else req.HostConfig.NetworkMode or "default"
    endpoints = (req.NetworkingConfig or {}).get("EndpointsConfig")
    if endpoints is not None and not isinstance(endpoints, dict):
        raise InvalidArgument("NetworkingConfig.EndpointsConfig must be an object")
    joins = mode.split(":", 1)[1] if mode.startswith("container:") else None
    _check_etc_options(req, joins is not None)
    if joins is not None or mode in ("host", "none"):
        if len(endpoints or {}) > 1:
            names = ", ".join(sorted(endpoints or {}))
            raise InvalidArgument(f"Container cannot be connected to network endpoints: {names}")
        _check_endpointless(req, mode, joins is not None, endpoints or {})
    endpoints = _with_container_mac(req, mode, endpoints)
    legacy = list(req.HostConfig.Links or [])
    if legacy and mode not in ("default", "bridge", "host", "none") and joins is None:
        # On a user-defined network a link is the endpoint's, as the docker CLI sends it there itself.
        endpoints = _on_main_network(endpoints, mode, "Links", legacy)
        legacy = []
    return NetworkChoice(mode=mode, joins=joins, endpoints=endpoints, links=legacy)


def _on_main_network(endpoints: dict[str, Any] | None, mode: str, key: str, value: Any) -> dict[str, Any]:
    out = dict(endpoints or {})
    name = next((k for k in out if k in (mode, "default")), mode)
    main = dict(out.get(name) or {})
    # The docker CLI sends a link both ways: once is enough.
    main[key] = list(dict.fromkeys([*(main.get(key) or []), *value])) if isinstance(value, list) else value
    out[name] = main
    return out


def _with_container_mac(req: CreateRequest, mode: str, endpoints: dict[str, Any] | None) -> dict[str, Any] | None:
    """The deprecated container-wide MacAddress is the main network's endpoint's, as dockerd moves it there."""
    macs = [cfg.get("MacAddress") for cfg in (endpoints or {}).values() if isinstance(cfg, dict)]
    if (req.MacAddress or any(macs)) and (mode == "host" or mode.startswith("container:")):
        raise InvalidArgument("conflicting options: mac-address and the network mode")
    if not req.MacAddress or mode == "none":
        return endpoints  # without a network, dockerd keeps the address in Config and uses it nowhere
    main = next((cfg for k, cfg in (endpoints or {}).items() if k in (mode, "default")), None) or {}
    if main.get("MacAddress") and main["MacAddress"] != req.MacAddress:
        raise InvalidArgument("the container-wide MAC address must match the endpoint-specific MAC address for the "
                              "main network, or be left empty")
    return _on_main_network(endpoints, mode, "MacAddress", req.MacAddress)


def _check_endpointless(req: CreateRequest, mode: str, joins: bool, endpoints: dict[str, Any]) -> None:
    """A container with the host's network, none, or another container's has no endpoint of its own: what only
    an endpoint can carry is refused in dockerd's words (ports on the host's network are its warning)."""
    hc = req.HostConfig
    if joins:
        if hc.PublishAllPorts or any((hc.PortBindings or {}).values()):
            raise InvalidArgument("conflicting options: port publishing and the container type network mode")
        if req.ExposedPorts:
            raise InvalidArgument("conflicting options: port exposing and the container type network mode")
        if req.Hostname:
            raise InvalidArgument("conflicting options: hostname and the network mode")
    for cfg in endpoints.values():
        if not isinstance(cfg, dict):
            continue
        if cfg.get("Aliases"):
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        ipam = cfg.get("IPAMConfig") or {}
        if isinstance(ipam, dict) and (ipam.get("IPv4Address") or ipam.get("IPv6Address")):
            raise InvalidArgument("user specified IP address is supported on user defined networks only")


def published_port_warnings(req: CreateRequest, mode: str) -> list[str]:
    hc = req.HostConfig
    if mode in ("host", "none") and (hc.PublishAllPorts or any((hc.PortBindings or {}).values())):
        return [f"Published ports are discarded when using {mode} network mode"]
    return []


def _check_etc_options(req: CreateRequest, joins: bool) -> None:
    """DNS options and extra hosts go into the container's own resolv.conf and hosts, which one that joins
    another's network does not have."""
    hc = req.HostConfig
    dns = next((f for f in ("Dns", "DnsSearch", "DnsOptions") if getattr(hc, f)), None)
    if joins and dns:
        raise InvalidArgument("conflicting options: dns and the network mode")
    if joins and hc.ExtraHosts:
        raise InvalidArgument("conflicting options: custom host-to-IP mapping and the network mode")


# dockerd's floor for the healthcheck's durations (container.MinimumDuration), in nanoseconds.
_MINIMUM_DURATION = 1_000_000


def _check_healthcheck(healthcheck: Any) -> None:
    """dockerd's checks on a healthcheck, with its words: a probe every nanosecond is a mistake, not a plan."""
    if not healthcheck:
        return
    if not isinstance(healthcheck, dict):
        raise InvalidArgument("Healthcheck must be an object")
    test = healthcheck.get("Test")
    if test is not None and not (isinstance(test, list) and all(isinstance(t, str) for t in test)):
        raise InvalidArgument("Healthcheck.Test must be an array of strings")
    if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        # dockerd runs no probe for a kind it does not know; running it as a command would be a guess.
        raise InvalidArgument(f"unknown healthcheck type {test[0]!r}: use NONE, CMD or CMD-SHELL")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = healthcheck.get(key) or 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"Healthcheck.{key} must be an integer (nanoseconds)")
        if 0 < value < _MINIMUM_DURATION or value < 0:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    retries = healthcheck.get("Retries") or 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise InvalidArgument("Healthcheck.Retries must be an integer")
    if retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")


def plan(req: CreateRequest, image: Image, cid: str, features: Mapping[str, Any],
         joined_hostname: str | None = None) -> CreatePlan:
    """The plan for creating container `cid` from `req` and `image` on a host with `features`;
    `joined_hostname` that of the container whose network it joins."""
    policy = restart_policy(req.HostConfig.RestartPolicy or RestartPolicyModel())
    if req.HostConfig.AutoRemove and policy["Name"] != "no":
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    on_failure = (req.Labels or {}).get(ON_FAILURE_LABEL)
    if on_failure is not None and on_failure not in ON_FAILURE_ACTIONS:
        raise InvalidArgument(f"invalid {ON_FAILURE_LABEL} {on_failure!r}: use one of {', '.join(ON_FAILURE_ACTIONS)}")
    if req.HostConfig.UTSMode == "host" and req.Hostname:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    clamp_cpu_shares(req.HostConfig)
    memory = req.HostConfig.Memory or 0
    if memory > 0 and not req.HostConfig.MemorySwap:
        # dockerd's default, which inspect shows: as much swap as memory.
        req.HostConfig.MemorySwap = memory * 2
    warnings = discard_unsupported(req.HostConfig, features) + discard_memory_policy(req.HostConfig, features)
    hostname = hostname_for(req, cid, joined_hostname)
    config = inspect_config(req, image, hostname)
    host_config = inspect_host_config(req, features)
    check_limits(host_config)
    requested_ports(config.get("ExposedPorts") or {}, host_config["PortBindings"],
                    bool(req.HostConfig.PublishAllPorts))
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not argv:
        raise InvalidArgument("No command specified")
    _check_healthcheck(config.get("Healthcheck"))
    ipc = ipc_mode(req.HostConfig.IpcMode)
    host_config["IpcMode"] = ipc
    options = runtime_options(req, hostname, features)
    options["ipc_mode"] = runtime_ipc_mode(ipc)
    # The process is Docker's merge of request and image, made here; the runtime takes it as given.
    options.update(args=argv, env=config["Env"], cwd=config["WorkingDir"] or None,
                   user=config["User"] or None)
    network = network_choice(req)
    return CreatePlan(hostname=hostname, config=config, host_config=host_config, path=argv[0] if argv else "",
                      args=argv[1:], options=options, init=bool(req.HostConfig.Init), network=network,
                      image_volumes=image.config.get("Volumes"),
                      warnings=warnings + published_port_warnings(req, network.mode))
