"""--network (short and long syntax) with --network-alias, --ip, --ip6, --link, --link-local-ip and
--mac-address, as the docker CLI turns them into HostConfig.NetworkMode and NetworkingConfig.

The first network gets the flags of the short notation; an endpoint config is sent for every network
given, but for a single network given with nothing to say about it (docker's backward compatibility), and
for the daemon's default network when no --network is given.
"""
from __future__ import annotations

import re
from typing import Any

from cli.pyengine.api import CLIError

USAGE = 125
# Compiled on first use (re caches them): a command line without --network pays nothing.
_LONG_SYNTAX = r"\w+=\w+(,\w+=\w+)*"
_MAC = r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}"


class Attachment:
    """One --network value: the network and what the long syntax says about its endpoint."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.aliases: list[str] = []
        self.links: list[str] = []
        self.ipv4 = self.ipv6 = self.mac = ""
        self.link_local_ips: list[str] = []
        self.driver_opts: dict[str, str] = {}
        self.gw_priority = 0


def _flag_error(value: str, why: str) -> CLIError:
    return CLIError(f'invalid argument "{value}" for "--network" flag: {why}', USAGE)


def attachment(value: str) -> Attachment:
    """docker's NetworkOpt: a name, or name=NAME,alias=A,ip=IP,ip6=IP,mac-address=MAC,link-local-ip=IP,
    driver-opt=K=V,gw-priority=N (keys and values lower-cased, as docker does)."""
    import csv  # only a command line with the flag pays for the module

    if not re.search(_LONG_SYNTAX, value):
        return Attachment(value)
    out = Attachment("")
    for item in next(csv.reader([value]), []):
        key, eq, val = item.lower().partition("=")
        if not eq or not key:
            raise _flag_error(value, f"invalid field {item}")
        key, val = key.strip(), val.strip()
        if key == "name":
            out.target = val
        elif key == "alias":
            out.aliases.append(val)
        elif key == "ip":
            out.ipv4 = val
        elif key == "ip6":
            out.ipv6 = val
        elif key == "mac-address":
            out.mac = val
        elif key == "link-local-ip":
            out.link_local_ips.append(val)
        elif key == "driver-opt":
            opt_key, opt_eq, opt_val = val.partition("=")
            if not opt_eq or not opt_key:
                raise _flag_error(value, "invalid key value pair format in driver options")
            out.driver_opts[opt_key.strip()] = opt_val.strip()
        elif key == "gw-priority":
            try:
                out.gw_priority = int(val)
            except ValueError:
                raise _flag_error(value, f'invalid gw-priority: strconv.Atoi: parsing "{val}": invalid syntax') \
                    from None
        else:
            raise _flag_error(value, f"invalid field key {key}")
    if not out.target:
        raise _flag_error(value, "network name/id is not specified")
    return out


def user_defined(mode: str) -> bool:
    return mode not in ("default", "bridge", "host", "none") and not mode.startswith("container:")


def link(spec: str) -> str:
    """--link NAME[:ALIAS], checked as docker checks it (and sent as given)."""
    if not spec:
        raise CLIError('invalid argument "" for "--link" flag: empty string specified for links', USAGE)
    if spec.count(":") > 1:
        raise CLIError(f'invalid argument "{spec}" for "--link" flag: bad format for links: {spec}', USAGE)
    return spec


def _apply_short_flags(n: Attachment, o: dict[str, Any]) -> None:
    """The short notation's flags on the first network, unless the long syntax already said the same."""
    for given, flag, what in ((n.aliases and o["network_alias"], "--network-alias", "per-network alias"),
                              (n.links and o["link"], "--link", "per-network links"),
                              (n.ipv4 and o["ip"], "--ip", "per-network IPv4 address"),
                              (n.ipv6 and o["ip6"], "--ip6", "per-network IPv6 address"),
                              (n.mac and o["mac_address"], "--mac-address", "per-network MAC address"),
                              (n.link_local_ips and o["link_local_ip"], "--link-local-ip",
                               "per-network link-local IP addresses")):
        if given:
            raise CLIError(f"conflicting options: cannot specify both {flag} and {what}", USAGE)
    n.aliases = list(o["network_alias"] or n.aliases)
    # On a user-defined network a link is an endpoint alias; on the default bridge it is a legacy link.
    if user_defined(n.target) and o["link"]:
        n.links = list(o["link"])
    n.ipv4 = o["ip"] or n.ipv4
    n.ipv6 = o["ip6"] or n.ipv6
    n.mac = o["mac_address"] or n.mac
    n.link_local_ips = list(o["link_local_ip"] or n.link_local_ips)


def _endpoint(n: Attachment) -> dict[str, Any]:
    """An EndpointSettings as the docker CLI sends it: every field, zero when unset."""
    if not n.target.strip():
        raise CLIError("no name set for network", USAGE)
    if not user_defined(n.target):
        if n.aliases:
            raise CLIError("network-scoped aliases are only supported for user-defined networks", USAGE)
        if n.links:
            raise CLIError("links are only supported for user-defined networks", USAGE)
    if n.mac and not re.fullmatch(_MAC, n.mac.strip()):
        raise CLIError(f"{n.mac} is not a valid mac address", USAGE)
    ipam = None
    if n.ipv4 or n.ipv6 or n.link_local_ips:
        # Every field of EndpointIPAMConfig is omitempty.
        ipam = {key: value for key, value in (("IPv4Address", n.ipv4), ("IPv6Address", n.ipv6),
                                              ("LinkLocalIPs", n.link_local_ips)) if value}
    return {"IPAMConfig": ipam, "Links": n.links or None, "MacAddress": n.mac, "Aliases": n.aliases or None,
            "DriverOpts": n.driver_opts or None, "GwPriority": n.gw_priority, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": None}


def _says_nothing(endpoint: dict[str, Any]) -> bool:
    return not any(value for key, value in endpoint.items())


def networking(o: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """HostConfig.NetworkMode and NetworkingConfig.EndpointsConfig from the network flags."""
    for spec in o["link"] or []:
        link(spec)
    given = [attachment(value) for value in o["network"] or []]
    if not given:
        default = Attachment("default")
        _apply_short_flags(default, o)
        return "default", {"default": _endpoint(default)}
    endpoints: dict[str, Any] = {}
    for i, n in enumerate(given):
        if i == 0:
            _apply_short_flags(n, o)
        endpoint = _endpoint(n)
        if n.target in endpoints:
            raise CLIError(f'network "{n.target}" is specified multiple times', USAGE)
        if i == 0 and len(given) == 1 and _says_nothing(endpoint):
            continue
        endpoints[n.target] = endpoint
    kinds = {user_defined(n.target) for n in given}
    if len(kinds) > 1:
        raise CLIError("conflicting options: cannot attach both user-defined and non-user-defined network-modes",
                       USAGE)
    return given[0].target, endpoints
