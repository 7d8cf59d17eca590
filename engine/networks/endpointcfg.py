"""A container's settings on one network (EndpointSettings) as dockerd checks them: static MAC, legacy links."""
from __future__ import annotations

import re
from collections.abc import Callable

from engine.errors import InvalidArgument
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
