"""A container's settings on one network (EndpointSettings) as dockerd checks them: static MAC, legacy links."""
from __future__ import annotations

import re
from collections.abc import Callable

from typing import Any

from engine.errors import InvalidArgument
from engine.networks.model import Endpoint
from engine.networks.store import NetworkStore

MAC_ADDRESS = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def mac(given: str) -> str | None:
    """A static MAC address (--mac-address), as dockerd checks it: six colon-separated hex octets, unicast."""
    if not given:
        return None
    if not MAC_ADDRESS.fullmatch(given) or int(given[:2], 16) & 1:
        raise InvalidArgument(f"invalid MAC address: {given}")
    return given.lower()


def link(given: str) -> str:
    """An endpoint's link as "target:alias" (the alias defaults to the target's name)."""
    target, _, alias = given.partition(":")
    target, alias = target.strip("/"), (alias or target).strip("/").rsplit("/", 1)[-1]
    if not target or not alias:
        raise InvalidArgument(f"invalid link format: {given!r}: use name:alias")
    return f"{target}:{alias}"


def settings_of(e: Endpoint) -> dict[str, Any]:
    """The EndpointSettings that would make `e` again: what its container asked for, not what it was given."""
    ipam = {k: v for k, v in (("IPv4Address", e.ip if e.static_ip else None),
                              ("IPv6Address", e.ip6 if e.static_ip6 else None)) if v}
    return {"Aliases": list(e.aliases) or None, "Links": list(e.links) or None, "IPAMConfig": ipam or None,
            "MacAddress": e.static_mac or ""}


def link_addresses(store: NetworkStore, cid: str, name_of: Callable[[str], str]) -> list[tuple[str, str]]:
    """(alias, address) of each running target of the container's links on user-defined networks."""
    out = []
    for e in store.endpoints_of(cid):
        for given in e.links:
            target, _, alias = given.partition(":")
            other = next((o for o in store.endpoints_on(e.network_id) if o.ip and o.interface and (
                name_of(o.container_id) == target or o.container_id.startswith(target))), None)
            if other is not None and other.ip:
                out.append((alias, other.ip))
    return out
