"""The Docker API's view of a network (`GET /networks`, `GET /networks/{id}`)."""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import Any

from engine.networks.model import Endpoint, Network


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1e9):09d}Z"


def network(n: Network, endpoints: Iterable[Endpoint], container_name: Callable[[str], str]) -> dict[str, Any]:
    containers = {}
    for e in endpoints:
        if e.interface and e.ip:
            prefix = ipaddress.IPv4Network(n.subnet).prefixlen if n.subnet else 32
            containers[e.container_id] = {"Name": container_name(e.container_id), "EndpointID": e.id,
                                          "MacAddress": e.mac or "", "IPv4Address": f"{e.ip}/{prefix}",
                                          "IPv6Address": ""}
    config = []
    if n.subnet:
        entry = {"Subnet": n.subnet, "Gateway": n.gateway}
        if n.ip_range:
            entry["IPRange"] = n.ip_range
        config.append(entry)
    return {
        "Name": n.name, "Id": n.id, "Created": _rfc3339(n.created), "Scope": "local", "Driver": n.driver,
        "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Containers": containers, "Options": n.options, "Labels": n.labels,
    }
