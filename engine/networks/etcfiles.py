"""/etc/hosts and /etc/resolv.conf for a networked container, as Docker writes them."""
from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

_HOSTS_BASE = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
# Docker's fallback when the host has only loopback resolvers, which a container cannot reach.
_FALLBACK = ["8.8.8.8", "8.8.4.4"]
# ExtraHosts' stand-in for the host's address as the containers reach it (the default bridge's gateway).
HOST_GATEWAY = "host-gateway"


@dataclass(frozen=True)
class EtcConfig:
    """What a container's hosts and resolv.conf say beyond its addresses: its names, --dns*, --add-host."""

    hostname: str
    domainname: str = ""
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()  # (name, address or HOST_GATEWAY)
    links: tuple[tuple[str, str], ...] = ()  # (names, address) of the containers it links to

    @classmethod
    def of(cls, cid: str, config: Mapping[str, Any], host_config: Mapping[str, Any],
           links: Iterable[tuple[str, str]] = ()) -> EtcConfig:
        """From a container's Config and HostConfig as inspect shows them, and its resolved links."""
        return cls(hostname=config.get("Hostname") or cid[:12], domainname=config.get("Domainname") or "",
                   dns=tuple(host_config.get("Dns") or ()), dns_search=tuple(host_config.get("DnsSearch") or ()),
                   dns_options=tuple(host_config.get("DnsOptions") or ()),
                   extra_hosts=tuple(split_extra_host(e) for e in host_config.get("ExtraHosts") or ()),
                   links=tuple(links))


@dataclass(frozen=True)
class DnsDefaults:
    """The daemon's --dns, --dns-search and --dns-opt: each for the containers that set none of that kind."""

    dns: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def any(self) -> bool:
        return bool(self.dns or self.search or self.options)

    def fill(self, etc: EtcConfig) -> EtcConfig:
        if not self.any():
            return etc
        return replace(etc, dns=etc.dns or self.dns, dns_search=etc.dns_search or self.search,
                       dns_options=etc.dns_options or self.options)


def split_extra_host(entry: str) -> tuple[str, str]:
    """`name:address` (or the newer `name=address`); an IPv6 address may be bracketed. ValueError if malformed."""
    name, _, address = entry.partition("=" if "=" in entry else ":")
    address = address.strip("[]")
    if not name or not address:
        raise ValueError(f"bad format for add-host: {entry!r}")
    if address != HOST_GATEWAY:
        ipaddress.ip_address(address)
    return name, address


def hosts(etc: EtcConfig, addresses: list[str], host_gateway: str | None) -> str:
    """Docker's order: the fixed entries, the extra hosts, the links, then the container's own addresses."""
    # The full name, then the short one (`h1.example.org h1`), as libnetwork writes them.
    fqdn = f"{etc.hostname}.{etc.domainname}" if etc.domainname else etc.hostname
    short = etc.hostname.split(".", 1)[0]
    names = fqdn if short == fqdn else f"{fqdn} {short}"
    extra = "".join(f"{host_gateway if ip == HOST_GATEWAY else ip}\t{name}\n" for name, ip in etc.extra_hosts
                    if ip != HOST_GATEWAY or host_gateway)
    extra += "".join(f"{ip}\t{linked}\n" for linked, ip in etc.links)
    return _HOSTS_BASE + extra + "".join(f"{ip}\t{names}\n" for ip in addresses)


def _host_resolv(path: Path) -> tuple[list[str], list[str], list[str]]:
    """The host's nameservers, its search line and its options line."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return [], [], []
    servers, search, options = [], [], []
    for line in lines:
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = [" ".join(fields)]
        elif fields[0] == "options":
            options.append(" ".join(fields))
    return servers, search, options


def resolv_conf(etc: EtcConfig, network_resolvers: list[str], host_file: Path = Path("/etc/resolv.conf"),
                host_network: bool = False) -> str:
    """Nameservers: the network's resolver, then --dns; without either, the host's minus loopback (with them,
    on the host's network, where loopback resolvers answer). Search and options lines: --dns-search and
    --dns-option where given, else the host's."""
    servers, search, options = _host_resolv(host_file)
    chosen = network_resolvers + list(etc.dns)
    if not chosen:
        chosen = servers if host_network else [s for s in servers if not _loopback(s)] or _FALLBACK
    if etc.dns_search:
        # Docker's "." clears the search list.
        search = [] if list(etc.dns_search) == ["."] else ["search " + " ".join(etc.dns_search)]
    if etc.dns_options:
        options = ["options " + " ".join(etc.dns_options)]
    elif network_resolvers and not any("ndots:" in line for line in options):
        # As dockerd's embedded DNS: a name with a dot goes to the network's resolver as it is, not with each
        # search domain first.
        options = [*options, "options ndots:0"]
    nameservers = [f"nameserver {s}" for s in chosen]
    if etc.dns or etc.dns_search or etc.dns_options or network_resolvers:
        # libnetwork builds the file anew then: search, nameservers, options.
        return "".join(f"{line}\n" for line in search + nameservers + options)
    return "".join(f"{line}\n" for line in nameservers + search + options)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def mounts(base: Path) -> list[dict[str, Any]]:
    """The bind mounts of the files under `base` over the image's /etc/hosts and /etc/resolv.conf."""
    return [{"type": "bind", "source": str(base / name), "destination": f"/etc/{name}", "options": ["rbind", "rw"]}
            for name in ("hosts", "resolv.conf")]


def touch(base: Path) -> None:
    """Empty hosts and resolv.conf under `base`, so that their bind mounts have a source before a start fills them."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in ("hosts", "resolv.conf"):
        (base / name).touch(mode=0o644)


def remove(base: Path) -> None:
    """The files touch() or a start wrote under `base`, and `base` once nothing else is in it (the container's
    logs share it, and go with their own removal)."""
    for name in ("hosts", "resolv.conf"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(base / name)
    with contextlib.suppress(OSError):
        os.rmdir(base)


def write_isolated(base: Path, etc: EtcConfig | None = None, host_gateway: str | None = None) -> None:
    """A container with no network's hosts and resolv.conf under `base`: Docker's fixed entries and extra hosts (its
    own name has no address to go with), and the resolvers any container gets."""
    etc = etc or EtcConfig(hostname="")
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    (base / "hosts").write_text(hosts(replace(etc, links=()), [], host_gateway))
    (base / "resolv.conf").write_text(resolv_conf(etc, []))


def copy_from_host(base: Path, etc: EtcConfig | None = None, host_gateway: str | None = None) -> None:
    """A host-network container's hosts and resolv.conf under `base`: the host's own (empty where unreadable),
    unless `etc` asks for more, as libnetwork's default sandbox does: extra hosts make a fresh hosts file of
    Docker's entries and them; --dns* options make resolv.conf the host's with them applied."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in ("hosts", "resolv.conf"):
        try:
            shutil.copyfile(f"/etc/{name}", base / name)
        except OSError:
            (base / name).touch(mode=0o644)
    if etc is None:
        return
    if etc.extra_hosts:
        (base / "hosts").write_text(hosts(replace(etc, links=()), [], host_gateway))
    if etc.dns or etc.dns_search or etc.dns_options:
        (base / "resolv.conf").write_text(resolv_conf(etc, [], host_network=True))
