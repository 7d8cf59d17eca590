"""CNI results read into records.

0.3.0 onwards (0.3.x, 0.4.0, 1.0.0): `interfaces` [{name, mac, sandbox}], `ips` [{address (CIDR),
gateway, interface (index into interfaces)}], `routes`, `dns`; 0.3.x also carry `version` per IP,
which 1.0.0 dropped. 0.1.0/0.2.0: `ip4`/`ip6` objects {ip, gateway, routes}. The pod's addresses are
those on its interface inside the sandbox; a result that names no interfaces gives all its IPs.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from runtime.cri.cni.errors import InvalidNetworkConfig

Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""


@dataclass(frozen=True)
class IPConfig:
    address: Address
    gateway: str = ""
    interface: int | None = None

    @property
    def ip(self) -> str:
        return str(self.address.ip)

    @property
    def version(self) -> int:
        return self.address.version


@dataclass(frozen=True)
class Result:
    cni_version: str
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[dict[str, Any], ...] = ()
    dns: dict[str, Any] = field(default_factory=dict)

    def ips_on(self, ifname: str) -> list[IPConfig]:
        """IPs on the sandbox interface `ifname`, IPv4 before IPv6 (the CRI's primary IP is v4)."""
        wanted = {i for i, itf in enumerate(self.interfaces) if itf.name == ifname and itf.sandbox}
        chosen = [ip for ip in self.ips if ip.interface is None or ip.interface in wanted]
        return sorted(chosen, key=lambda ip: ip.version)


def _address(value: Any, where: str) -> Address:
    try:
        return ipaddress.ip_interface(value)
    except ValueError:
        raise InvalidNetworkConfig(f"{where}: invalid address {value!r}") from None


def _legacy_ips(doc: dict[str, Any]) -> list[IPConfig]:
    out: list[IPConfig] = []
    for key in ("ip4", "ip6"):
        block = doc.get(key)
        if isinstance(block, dict) and block.get("ip"):
            out.append(IPConfig(_address(block["ip"], key), str(block.get("gateway") or "")))
    return out


def parse_result(doc: dict[str, Any]) -> Result:
    if not isinstance(doc, dict):
        raise InvalidNetworkConfig("a CNI result is a JSON object")
    version = str(doc.get("cniVersion") or "")
    if "ip4" in doc or "ip6" in doc:
        return Result(version, ips=tuple(_legacy_ips(doc)), dns=dict(doc.get("dns") or {}))
    interfaces = tuple(
        Interface(str(i.get("name", "")), str(i.get("mac", "")), str(i.get("sandbox", "")))
        for i in doc.get("interfaces") or [] if isinstance(i, dict))
    ips = []
    for n, ip in enumerate(doc.get("ips") or []):
        if not isinstance(ip, dict):
            raise InvalidNetworkConfig(f"result ips[{n}] is not an object")
        index = ip.get("interface")
        ips.append(IPConfig(_address(ip.get("address"), f"ips[{n}]"), str(ip.get("gateway") or ""),
                            index if isinstance(index, int) else None))
    routes = tuple(r for r in doc.get("routes") or [] if isinstance(r, dict))
    return Result(version, interfaces, tuple(ips), routes, dict(doc.get("dns") or {}))
