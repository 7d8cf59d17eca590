"""Address management for bridge networks: subnets from Docker's default pools, addresses within them.

IPv4 and IPv6 alike; a network's IPv6 subnet, unless given, is a /64 of a /48 unique local prefix of
the engine's own (as dockerd 27 and later pick one), so two engines on a host do not share one.

Pure functions over what is already taken, so the store decides under one lock and nothing here
touches the system except `host_routes`, which reads the routes the host already has (a new
network must not shadow a LAN, or another engine's bridge).
"""
from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import Conflict, InvalidArgument

IPv4Net = ipaddress.IPv4Network
IPv6Net = ipaddress.IPv6Network
Subnet = IPv4Net | IPv6Net


@dataclass(frozen=True)
class Pool:
    """One of dockerd's default-address-pools: `base` cut into subnets of `size` bits."""

    base: IPv4Net
    size: int

    @classmethod
    def of(cls, base: str, size: int) -> Pool:
        """Checked as dockerd checks daemon.json's pools (IPv4 only here: IPv6 subnets come from the engine's
        own unique local prefix, see pick_subnet6)."""
        try:
            net = ipaddress.ip_network(base, strict=False)
        except ValueError as e:
            raise InvalidArgument(f"invalid base pool {base!r}: {e}") from None
        if net.version != 4:
            raise InvalidArgument(f"invalid base pool {base!r}: only IPv4 pools are supported by this engine")
        if not net.prefixlen <= size <= 30:
            raise InvalidArgument(f"invalid pools size: {size}")
        return cls(net, size)


# dockerd's defaults: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
DEFAULT_POOLS = (Pool(IPv4Net("172.17.0.0/16"), 16), Pool(IPv4Net("172.18.0.0/15"), 16),
                 Pool(IPv4Net("172.20.0.0/14"), 16), Pool(IPv4Net("172.24.0.0/13"), 16),
                 Pool(IPv4Net("192.168.0.0/16"), 20))


def _subnets(pools: Iterable[Pool]) -> Iterator[IPv4Net]:
    for pool in pools:
        yield from pool.base.subnets(new_prefix=pool.size)


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


def parse_subnet(text: str, version: int = 4) -> Subnet:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid subnet {text!r}: not a CIDR network address") from None
    if net.version != version:
        raise InvalidArgument(f"invalid subnet {text!r}: an IPv{version} subnet is needed here")
    if net.max_prefixlen - net.prefixlen < 2:
        raise InvalidArgument(f"invalid subnet {text!r}: a /{net.prefixlen} leaves no room for containers")
    return net


def pick_subnet(taken: Iterable[Subnet], pools: Iterable[Pool] = DEFAULT_POOLS) -> IPv4Net:
    used = [t for t in taken if t.version == 4]
    for subnet in _subnets(pools):
        if not any(subnet.overlaps(t) for t in used):
            return subnet
    raise Conflict("could not find an available, non-overlapping IPv4 address pool among the defaults to "
                   "assign to the network")


def pick_subnet6(taken: Iterable[Subnet], seed: str) -> IPv6Net:
    """A /64 of the unique local /48 that `seed` (the engine's own) names, not taken by another network."""
    global_id = hashlib.sha256(seed.encode()).digest()[:5]
    prefix = IPv6Net((b"\xfd" + global_id + bytes(10), 48))
    used = [t for t in taken if t.version == 6]
    for candidate in prefix.subnets(new_prefix=64):
        if not any(candidate.overlaps(t) for t in used):
            return candidate
    raise Conflict("could not find an available, non-overlapping IPv6 address pool to assign to the network")


def check_free(subnet: Subnet, networks: Iterable[tuple[str, Subnet]]) -> None:
    for name, other in networks:
        if subnet.version == other.version and subnet.overlaps(other):
            raise Conflict(f"invalid pool request: Pool overlaps with other one on this address space "
                           f"({subnet} overlaps {other} of network {name})")


def gateway_for(subnet: Subnet, given: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not given:
        return subnet.network_address + 1
    try:
        gw = ipaddress.ip_address(given)
    except ValueError:
        raise InvalidArgument(f"invalid gateway {given!r}") from None
    if gw.version != subnet.version or gw not in subnet or gw in (subnet.network_address,
                                                                     subnet.broadcast_address):
        raise InvalidArgument(f"no matching subnet for gateway {given}")
    return gw


def ip_range_in(subnet: Subnet, given: str | None) -> Subnet | None:
    if not given:
        return None
    rng = parse_subnet(given, subnet.version) if "/" in given else None
    if rng is None or not rng.subnet_of(subnet):  # type: ignore[arg-type]  # same version, checked above
        raise InvalidArgument(f"invalid ip-range {given!r}: it must be a CIDR within the subnet {subnet}")
    return rng


def allocate(subnet: Subnet, gateway: str, ip_range: Subnet | None, taken: Iterable[str]) -> str:
    used = set(taken) | {gateway}
    pool = ip_range or subnet
    # A range's own network and broadcast addresses are usable: only the subnet's are not.
    for host in pool:
        if host in (subnet.network_address, subnet.broadcast_address):
            continue
        if str(host) not in used:
            return str(host)
    raise Conflict(f"no available IPv{subnet.version} addresses on this network's address pools: {subnet}")


def check_static(subnet: Subnet, gateway: str, address: str, taken: Iterable[str], picked: bool = False) -> str:
    if picked:
        raise InvalidArgument("user specified IP address is supported only when connecting to networks with user "
                              "configured subnets")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidArgument(f"invalid IPv{subnet.version} address: {address!r}") from None
    if ip.version != subnet.version or ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"invalid IPv{subnet.version} address {address}: it does not belong to the "
                              f"network's subnet {subnet}")
    if str(ip) == gateway or str(ip) in set(taken):
        raise Conflict(f"Address already in use: {address}")
    return str(ip)


@dataclass(frozen=True)
class Addresses:
    """One address family of a network: its subnet, gateway and the range containers' addresses come from."""
    subnet: Subnet
    gateway: str
    ip_range: Subnet | None


def addresses(subnet: str | None, gateway: str | None, ip_range: str | None, version: int,
              others: Iterable[tuple[str, Subnet]], pick: Callable[[], Subnet]) -> Addresses:
    """The family's addresses as asked for (a subnet of no other network's), or a subnet `pick`ed."""
    if gateway and not subnet:
        raise InvalidArgument("a gateway needs a subnet")
    if subnet:
        net = parse_subnet(subnet, version)
        check_free(net, others)
    else:
        net = pick()
    return Addresses(net, str(gateway_for(net, gateway)), ip_range_in(net, ip_range))
