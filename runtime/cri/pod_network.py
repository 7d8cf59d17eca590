"""The CRI's pod network on CNI: a named network namespace per pod, wired by the conf dir's plugins."""
from __future__ import annotations

import asyncio
import contextlib

from runtime.cri.cni.manager import CNIManager, DNSConfig, PodNetwork, PortMapping
from runtime.cri.cni.netns import NetnsDir
from runtime.cri.network import PodNetworkRequest, PodNetworkResult


class CNIPodNetwork:
    def __init__(self, manager: CNIManager, namespaces: NetnsDir) -> None:
        self._cni = manager
        self._netns = namespaces

    async def not_ready(self) -> str | None:
        status = await self._cni.status()
        return None if status.ready else (status.message or status.reason or "the pod network is not ready")

    def _pod(self, req: PodNetworkRequest, netns: str) -> PodNetwork:
        ports = tuple(PortMapping(container_port=int(str(p["containerPort"])), host_port=int(str(p["hostPort"])),
                                  protocol=str(p.get("protocol") or "tcp"), host_ip=str(p.get("hostIP") or ""))
                      for p in req.port_mappings)
        dns = DNSConfig(tuple(req.dns.get("servers", [])), tuple(req.dns.get("searches", [])),
                        tuple(req.dns.get("options", []))) if req.dns else None
        return PodNetwork(id=req.sandbox_id, name=req.name, namespace=req.namespace, uid=req.uid, netns=netns,
                          port_mappings=ports, dns=dns)

    async def setup(self, req: PodNetworkRequest) -> PodNetworkResult:
        path = await self._netns.create(req.sandbox_id)
        try:
            status = await self._cni.setup(self._pod(req, path))
        except BaseException:
            with contextlib.suppress(Exception):
                await self._netns.remove(req.sandbox_id)
            raise
        return PodNetworkResult(netns=path, ips=list(status.ips))

    async def teardown(self, req: PodNetworkRequest, netns: str) -> None:
        await self._cni.teardown(req.sandbox_id)
        await self._netns.remove(req.sandbox_id)

    async def sweep(self, known: set[str]) -> None:
        await self._cni.sweep(known)
        for name in await asyncio.to_thread(self._netns.names):
            if name not in known:
                await self._netns.remove(name)
