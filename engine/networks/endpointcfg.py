"""A container's settings on one network (EndpointSettings) as dockerd checks them: static MAC, legacy links."""
from __future__ import annotations

import re

from engine.errors import InvalidArgument

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
