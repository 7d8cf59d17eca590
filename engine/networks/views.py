"""The Docker API's view of a network (`GET /networks`, `GET /networks/{id}`)."""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import Any

from engine.networks.model import Endpoint, Network


def _rfc3339(ts: float) -> str:
    """Go's RFC3339Nano, as dockerd writes `Created`: the fraction's trailing zeros dropped."""
    fraction = f"{int((ts % 1) * 1e9):09d}".rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + (f".{fraction}Z" if fraction else "Z")


def network(n: Network, endpoints: Iterable[Endpoint], container_name: Callable[[str], str]) -> dict[str, Any]:
    containers = {}
    for e in endpoints:
        if e.interface and e.ip:
            prefix = ipaddress.IPv4Network(n.subnet).prefixlen if n.subnet else 32
            prefix6 = ipaddress.IPv6Network(n.subnet6).prefixlen if n.subnet6 else 128
            containers[e.container_id] = {"Name": container_name(e.container_id), "EndpointID": e.id,
                                          "MacAddress": e.mac or "", "IPv4Address": f"{e.ip}/{prefix}",
                                          "IPv6Address": f"{e.ip6}/{prefix6}" if e.ip6 else ""}
    config = []
    for subnet, gateway, ip_range in ((n.subnet, n.gateway, n.ip_range), (n.subnet6, n.gateway6, n.ip_range6)):
        if subnet:
            entry = {"Subnet": subnet, "Gateway": gateway}
            if ip_range:
                entry["IPRange"] = ip_range
            config.append(entry)
    return {
        "Name": n.name, "Id": n.id, "Created": _rfc3339(n.created), "Scope": "local", "Driver": n.driver,
        "EnableIPv4": n.subnet is not None, "EnableIPv6": n.ipv6,
        "IPAM": {"Driver": "default", "Options": n.ipam_options, "Config": config},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Containers": containers, "Options": n.options, "Labels": n.labels,
    }


def endpoint(n: Network, e: Endpoint, dns_names: list[str] | None) -> dict[str, Any]:
    """A container's entry for network `n` in its NetworkSettings.Networks."""
    prefix = ipaddress.IPv4Network(n.subnet).prefixlen if n.subnet and e.ip else 0
    prefix6 = ipaddress.IPv6Network(n.subnet6).prefixlen if n.subnet6 and e.ip6 else 0
    asked = {**({"IPv4Address": e.ip} if e.static_ip else {}), **({"IPv6Address": e.ip6} if e.static_ip6 else {})}
    return {
        "IPAMConfig": asked or None, "Links": e.links or None, "Aliases": e.aliases or None, "DNSNames": dns_names,
        "GwPriority": 0, "NetworkID": n.id, "EndpointID": e.id if e.interface else "",
        "Gateway": n.gateway if e.ip else "", "IPAddress": e.ip or "", "IPPrefixLen": prefix,
        "IPv6Gateway": n.gateway6 if e.ip6 else "", "GlobalIPv6Address": e.ip6 or "", "GlobalIPv6PrefixLen": prefix6,
        "MacAddress": e.mac or "", "DriverOpts": None,
    }


def no_endpoint(network_id: str) -> dict[str, Any]:
    """The entry of the host or none network, which has no endpoints."""
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "DNSNames": None, "GwPriority": 0,
            "NetworkID": network_id, "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
