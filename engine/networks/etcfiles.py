"""/etc/hosts and /etc/resolv.conf for a networked container, as Docker writes them."""
from __future__ import annotations

import ipaddress
from pathlib import Path

_HOSTS_BASE = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
# Docker's fallback when the host has only loopback resolvers, which a container cannot reach.
_FALLBACK = ["8.8.8.8", "8.8.4.4"]


def hosts(hostname: str, domainname: str, addresses: list[str]) -> str:
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    return _HOSTS_BASE + "".join(f"{ip}\t{names}\n" for ip in addresses)


def _host_resolv(path: Path) -> tuple[list[str], list[str]]:
    """The host's nameservers and its other lines (search, options)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return [], []
    servers, other = [], []
    for line in lines:
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain", "options"):
            other.append(" ".join(fields))
    return servers, other


def resolv_conf(dns_servers: list[str], host_file: Path = Path("/etc/resolv.conf")) -> str:
    """With `dns_servers` (the network's resolver), those first; otherwise the host's, minus loopback."""
    servers, other = _host_resolv(host_file)
    if dns_servers:
        chosen = dns_servers
    else:
        chosen = [s for s in servers if not _loopback(s)] or _FALLBACK
    return "".join(f"nameserver {s}\n" for s in chosen) + "".join(f"{line}\n" for line in other)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False
