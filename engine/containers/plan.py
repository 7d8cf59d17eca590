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
from engine.containers.hostlimits import discard_unsupported
from engine.containers.images import Image
from engine.containers.namespaces import ipc_mode, runtime_ipc_mode
from engine.containers.options import (
    CreateRequest,
    RestartPolicyModel,
    hostname_for,
    inspect_config,
    inspect_host_config,
    runtime_options,
)
from engine.containers.resources import restart_policy
from engine.errors import InvalidArgument
from engine.networks.ports import requested as requested_ports


@dataclass(frozen=True)
class NetworkChoice:
    """NetworkMode read once: `container:<ref>` joins another container's namespace."""

    mode: str
    joins: str | None  # the container named by `container:<ref>`
    endpoints: dict[str, Any] | None


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
    mode = req.HostConfig.NetworkMode or "default"
    endpoints = (req.NetworkingConfig or {}).get("EndpointsConfig")
    if endpoints is not None and not isinstance(endpoints, dict):
        raise InvalidArgument("NetworkingConfig.EndpointsConfig must be an object")
    joins = mode.split(":", 1)[1] if mode.startswith("container:") else None
    return NetworkChoice(mode=mode, joins=joins, endpoints=endpoints)


# dockerd's floor for the healthcheck's durations (container.MinimumDuration), in nanoseconds.
_MINIMUM_DURATION = 1_000_000


def _check_healthcheck(healthcheck: Any) -> None:
    """dockerd's checks on a healthcheck, with its words: a probe every nanosecond is a mistake, not a plan."""
    if not healthcheck:
        return
    if not isinstance(healthcheck, dict):
        raise InvalidArgument("Healthcheck must be an object")
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


def plan(req: CreateRequest, image: Image, cid: str, features: Mapping[str, Any]) -> CreatePlan:
    """The plan for creating container `cid` from `req` and `image` on a host with `features`."""
    policy = restart_policy(req.HostConfig.RestartPolicy or RestartPolicyModel())
    if req.HostConfig.AutoRemove and policy["Name"] != "no":
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    on_failure = (req.Labels or {}).get(ON_FAILURE_LABEL)
    if on_failure is not None and on_failure not in ON_FAILURE_ACTIONS:
        raise InvalidArgument(f"invalid {ON_FAILURE_LABEL} {on_failure!r}: use one of {', '.join(ON_FAILURE_ACTIONS)}")
    warnings = discard_unsupported(req.HostConfig, features)
    hostname = hostname_for(req, cid)
    config = inspect_config(req, image, hostname)
    host_config = inspect_host_config(req)
    requested_ports(config.get("ExposedPorts") or {}, host_config["PortBindings"],
                    bool(req.HostConfig.PublishAllPorts))
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not argv:
        raise InvalidArgument("No command specified")
    _check_healthcheck(config.get("Healthcheck"))
    ipc = ipc_mode(req.HostConfig.IpcMode)
    host_config["IpcMode"] = ipc
    options = runtime_options(req, hostname)
    options["ipc_mode"] = runtime_ipc_mode(ipc)
    # The process is Docker's merge of request and image, made here; the runtime takes it as given.
    options.update(args=argv, env=config["Env"], cwd=config["WorkingDir"] or None, user=config["User"] or None)
    return CreatePlan(hostname=hostname, config=config, host_config=host_config, path=argv[0] if argv else "",
                      args=argv[1:], options=options, init=bool(req.HostConfig.Init),
                      network=network_choice(req), image_volumes=image.config.get("Volumes"), warnings=warnings)
