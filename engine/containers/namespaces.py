"""The namespaces Docker gives a container by default, and the settings that come with them.

IpcMode follows dockerd 20.10: an empty mode is the daemon's default, `private`, and inspect
shows it so; `shareable`, `none`, `host` and `container:<id>` are honoured. A container with a network namespace of its own gets dockerd's default network
sysctls (unprivileged ICMP echo sockets and low ports), where the host's kernel has them; the
user's own Sysctls win, and HostConfig.Sysctls shows only the user's, as dockerd's does.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import InvalidArgument

DEFAULT_IPC_MODE = "private"
# What each mode asks of the runtime: its own IPC namespace (None), the host's, or one without /dev/shm.
# A shareable one and `container:<id>` are pinned namespaces the create step names (engine/containers/ipc.py).
_IPC_RUNTIME: dict[str, str | None] = {"private": None, "shareable": None, "none": "none", "host": "host"}


def ipc_mode(value: str | None) -> str:
    """The IpcMode inspect shows, checked as dockerd checks it."""
    mode = value or DEFAULT_IPC_MODE
    if mode.startswith("container:"):
        if not mode.split(":", 1)[1]:
            raise InvalidArgument(f"invalid IPC mode: {mode}")
        return mode
    if mode not in _IPC_RUNTIME:
        raise InvalidArgument(f"invalid IPC mode: {mode}")
    return mode


def donor_ref(mode: str | None) -> str | None:
    """The container a `container:<ref>` IPC or PID mode names, if that is the mode."""
    return mode.split(":", 1)[1] if mode and mode.startswith("container:") else None


def runtime_ipc_mode(mode: str) -> str | None:
    return _IPC_RUNTIME.get(mode)


def network_sysctls(own_namespace: bool, given: Mapping[str, str], features: Mapping[str, Any],
                    *, no_network: bool = False) -> dict[str, str]:
    """The sysctls of the spec: dockerd's defaults for a network namespace of the container's own (not the
    host's, not another container's), then the user's. With `no_network` (`--network none`: the runtime makes
    that namespace, and nothing is ever connected to it) IPv6 is off there, as libnetwork turns it off in a new
    sandbox; the engine's own namespaces get that at their making (engine/networks/netns.py)."""
    if not own_namespace:
        return dict(given)
    defaults = {}
    if no_network and features.get("ipv6"):
        defaults["net.ipv6.conf.all.disable_ipv6"] = "1"
    if features.get("ping_group_range"):
        defaults["net.ipv4.ping_group_range"] = "0 2147483647"  # ping without CAP_NET_RAW
    if features.get("unprivileged_port_start"):
        defaults["net.ipv4.ip_unprivileged_port_start"] = "0"  # ports below 1024 without CAP_NET_BIND_SERVICE
    return {**defaults, **given}
