"""Docker's bridge driver options (`docker network create -o key=value`): each honoured or refused by name.

netavark 1.4 takes an MTU; the host address ports publish on by default is the engine's own choice; the
bridge's name and the prefix of containers' interface names are the engine's. What netavark cannot do
(containers of one network kept apart, no NAT on the way out) is refused rather than stored and ignored.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from engine.errors import InvalidArgument

BRIDGE_NAME = "com.docker.network.bridge.name"
MTU = "com.docker.network.driver.mtu"
HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
ICC = "com.docker.network.bridge.enable_icc"
MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
IFACE_PREFIX = "com.docker.network.container_iface_prefix"
INHIBIT_IPV4 = "com.docker.network.bridge.inhibit_ipv4"

_TRUE = {"1", "t", "true"}
_FALSE = {"0", "f", "false"}


def _bool(key: str, value: str) -> bool:
    """Go's strconv.ParseBool, as dockerd reads these options."""
    lowered = value.lower()
    if lowered not in _TRUE | _FALSE:
        raise InvalidArgument(f"failed to parse {key} value: {value!r}: invalid syntax")
    return lowered in _TRUE


def check(options: Mapping[str, str]) -> None:
    """A user network's options, each one this engine can carry out."""
    for key, value in options.items():
        if key == BRIDGE_NAME:
            # A name the kernel takes for a link (and safe in /sys paths): its length is checked at create.
            if not value or value in (".", "..") or not all(c.isalnum() or c in "_-." for c in value):
                raise InvalidArgument(f"invalid {key} {value!r}: letters, digits, '_', '-' or '.'")
        elif key == MTU:
            if not value.isdigit() or not 68 <= int(value) <= 65535:
                raise InvalidArgument(f"invalid MTU {value!r} ({MTU}): a number from 68 to 65535")
        elif key == HOST_BINDING:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise InvalidArgument(f"invalid {HOST_BINDING} {value!r}: not an IPv4 address") from None
        elif key == INHIBIT_IPV4:
            if _bool(key, value):  # "false" is how every bridge is
                raise InvalidArgument(f"{key}=true is not supported by this engine: its network stack (netavark "
                                      "1.4) always gives the bridge its gateway address")
        elif key in (ICC, MASQUERADE):
            if not _bool(key, value):
                raise InvalidArgument(f"{key}=false is not supported by this engine: its network stack (netavark "
                                      "1.4) cannot turn that off")
        elif key == IFACE_PREFIX:
            # Room for a number in a 15-character interface name; no character `ip link` would take apart.
            if not value or len(value) > 12 or not all(c.isalnum() or c in "_-" for c in value):
                raise InvalidArgument(f"invalid {key} {value!r}: 1 to 12 letters, digits, '_' or '-'")
        elif key == DEFAULT_BRIDGE:
            raise InvalidArgument(f"{key} belongs to the default bridge network alone")
        else:
            raise InvalidArgument(f"network driver option {key!r} is not supported by this engine")


def netavark(options: Mapping[str, str]) -> dict[str, str]:
    """The options netavark's bridge driver takes for them."""
    return {"mtu": options[MTU]} if MTU in options else {}


def bind_default(wanted: list[dict[str, Any]], options: Mapping[str, str]) -> list[dict[str, Any]]:
    """Port bindings without a host address take the network's (host_binding_ipv4), as dockerd's bridge does."""
    default = options.get(HOST_BINDING, "")
    if default in ("", "0.0.0.0"):
        return wanted
    return [w if w["ip"] else {**w, "ip": default} for w in wanted]


def iface_prefix(options: Mapping[str, str]) -> str:
    """The name containers' interfaces on the network take, before their number: `eth` unless the option says."""
    return options.get(IFACE_PREFIX) or "eth"
