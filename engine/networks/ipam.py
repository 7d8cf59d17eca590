"""Address management for bridge networks: subnets from Docker's default pools, addresses within them.

Pure functions over what is already taken, so the store decides under one lock and nothing here
touches the system except `host_routes`, which reads the routes the host already has (a new
network must not shadow a LAN, or another engine's bridge).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.errors import Conflict, InvalidArgument

IPv4Net = ipaddress.IPv4Network


def _default_pools() -> Iterator[IPv4Net]:
    # dockerd's defaults: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
    for second in range(17, 32):
        yield IPv4Net(f"172.{second}.0.0/16")
    yield from IPv4Net("192.168.0.0/16").subnets(new_prefix=20)


def host_routes() -> list[IPv4Net]:
    """Destinations of the host's IPv4 routes, default route excluded."""
    routes: list[IPv4Net] = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return routes
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        if int(mask) == 0:
            continue
        routes.append(IPv4Net(f"{dest}/{mask}", strict=False))
    return routes


def parse_subnet(text: str) -> IPv4Net:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid subnet {text!r}: not a CIDR network address") from None
    if not isinstance(net, IPv4Net):
        raise InvalidArgument(f"invalid subnet {text!r}: only IPv4 networks are supported")
    if net.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {text!r}: a /{net.prefixlen} leaves no room for containers")
    return net


def pick_subnet(taken: Iterable[IPv4Net]) -> IPv4Net:
    used = list(taken)
    for pool in _default_pools():
        if not any(pool.overlaps(t) for t in used):
            return pool
    raise Conflict("could not find an available, non-overlapping IPv4 address pool among the defaults to "
                   "assign to the network")


def check_free(subnet: IPv4Net, networks: Iterable[tuple[str, IPv4Net]]) -> None:
    for name, other in networks:
        if subnet.overlaps(other):
            raise Conflict(f"invalid pool request: Pool overlaps with other one on this address space "
                           f"({subnet} overlaps {other} of network {name})")


def gateway_for(subnet: IPv4Net, given: str | None) -> ipaddress.IPv4Address:
    if not given:
        return subnet.network_address + 1
    try:
        gw = ipaddress.IPv4Address(given)
    except ValueError:
        raise InvalidArgument(f"invalid gateway {given!r}") from None
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"no matching subnet for gateway {given}")
    return gw


def ip_range_in(subnet: IPv4Net, given: str | None) -> IPv4Net | None:
    if not given:
        return None
    rng = parse_subnet(given) if "/" in given else None
    if rng is None or not rng.subnet_of(subnet):
        raise InvalidArgument(f"invalid ip-range {given!r}: it must be a CIDR within the subnet {subnet}")
    return rng


def allocate(subnet: IPv4Net, gateway: str, ip_range: IPv4Net | None, taken: Iterable[str]) -> str:
    used = set(taken) | {gateway}
    pool = ip_range or subnet
    # A range's own network and broadcast addresses are usable: only the subnet's are not.
    for host in pool:
        if host in (subnet.network_address, subnet.broadcast_address):
            continue
        if str(host) not in used:
            return str(host)
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {subnet}")


def check_static(subnet: IPv4Net, gateway: str, address: str, taken: Iterable[str]) -> str:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address: {address!r}") from None
    if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"invalid IPv4 address {address}: it does not belong to the network's subnet {subnet}")
    if str(ip) == gateway or str(ip) in set(taken):
        raise Conflict(f"Address already in use: {address}")
    return str(ip)
