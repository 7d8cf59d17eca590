"""Each container's /etc/hosts and /etc/resolv.conf on disk: where they live, when they are written, and the
daemon's DNS defaults (--dns, --dns-search, --dns-opt) that fill in what a container does not set itself.

The files sit under the data root (`containers/<id>/`), bound over the image's by the runtime; a start writes them
before the process runs and a change of the container's networks (or of a linked container) writes them anew.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.networks import embedded_dns, endpointcfg, etcfiles
from engine.networks.etcfiles import DnsDefaults, EtcConfig
from engine.networks.model import BRIDGE
from engine.networks.store import NetworkStore


class SandboxFiles:
    def __init__(self, root: Path, store: NetworkStore, container_name: Callable[[str], str],
                 dns: DnsDefaults) -> None:
        self.root = root
        self._store = store
        self._container_name = container_name
        self._dns = dns

    def mounts(self, cid: str) -> list[dict[str, Any]]:
        """The runtime mounts these over the image's files; a start writes them before the task exists."""
        return etcfiles.mounts(self.root / cid)

    async def touch(self, cid: str) -> None:
        """The runtime checks bind sources at create; each start writes their content."""
        await asyncio.to_thread(etcfiles.touch, self.root / cid)

    def remove(self, cid: str) -> None:
        # A few unlinks: cheaper here than the hop to a worker thread, on the path of every `run --rm`.
        etcfiles.remove(self.root / cid)

    async def endpointless(self, cid: str, etc: EtcConfig | None = None,
                           host: bool = True) -> list[dict[str, Any]]:
        """/etc/hosts and resolv.conf of a container without an endpoint of ours. On the host's network: copies
        of the host's at create and each start (with `etc`'s extra hosts and DNS options), as dockerd does (its
        loopback resolvers work there), the container's to change; without `host` (network none): Docker's own."""
        if self._dns.any():
            etc = self._dns.fill(etc or EtcConfig(hostname=""))
        gateway = self._store.get(BRIDGE).gateway if etc and etc.extra_hosts else None
        write = etcfiles.copy_from_host if host else etcfiles.write_isolated
        await asyncio.to_thread(write, self.root / cid, etc, gateway)
        return self.mounts(cid)

    async def refresh(self, cid: str, etc: EtcConfig) -> None:
        """A running container's /etc/hosts and resolv.conf written anew, as libnetwork's sandbox Refresh does."""
        await asyncio.to_thread(self.write, cid, etc)

    def write(self, cid: str, etc: EtcConfig) -> None:
        """The files of a container with endpoints: its addresses, its links' and the networks' resolver."""
        base = self.root / cid
        endpoints = [(self._store.get(e.network_id), e) for e in self._store.endpoints_of(cid) if e.ip]
        host_gateway = self._store.get(BRIDGE).gateway
        etc = replace(self._dns.fill(etc), links=etc.links + tuple(
            endpointcfg.link_addresses(self._store, cid, self._container_name)))
        addresses = [ip for _, e in endpoints for ip in (e.ip, e.ip6) if ip]
        (base / "hosts").write_text(etcfiles.hosts(etc, addresses, host_gateway))
        resolvers = [embedded_dns.ADDRESS] if any(n.dns and n.gateway for n, _ in endpoints) else []
        (base / "resolv.conf").write_text(etcfiles.resolv_conf(etc, resolvers))
