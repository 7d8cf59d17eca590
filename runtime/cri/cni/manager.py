"""A pod's networks: `lo` through the loopback plugin, then the pod network on eth0 (containerd's order).

`setup` records each attachment in the cache before its ADD and again after each plugin (with the
chain's result so far); a failed setup tears down what it started before the error goes up, and the
plugins that did run get their own result back on DEL (the firewall plugin finds its rules by it).

`teardown` works from the cache alone — the network list, CNI_ARGS and port mappings of the ADD — so
it is right after a runtime crash or a conf dir change. It runs each DEL (the pod network first, `lo`
last) with the cached result as prevResult. Once the pod's namespace is gone, `lo` gets an empty
CNI_NETNS (which plugins accept), the pod network a stand-in namespace holding its recorded addresses
(netns.py says why). An entry is forgotten only after its DEL succeeded, so a failed teardown can be
retried; a second teardown finds nothing left and does nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from runtime.cri.cni.cache import Attachment, AttachmentCache
from runtime.cri.cni.config import (
    DEFAULT_BIN_DIRS, DEFAULT_CONF_DIR, LOOPBACK, NetworkConfigList, find_plugin, load_default_network)
from runtime.cri.cni.errors import InvalidNetworkConfig, NetworkNotReady, PluginNotFound
from runtime.cri.cni.invoke import Invoker, RuntimeConf
from runtime.cri.cni.netns import NetnsDir
from runtime.cri.cni.result import Result, parse_result
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from runtime.mount import is_mountpoint

_PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def to_runtime_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hostPort": self.host_port, "containerPort": self.container_port,
                               "protocol": self.protocol.lower()}
        if self.host_ip:
            out["hostIP"] = self.host_ip
        return out


@dataclass(frozen=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodNetwork:
    """What the CNI layer needs of a pod sandbox: its ids, its namespace path, its ports and DNS."""

    id: str
    name: str
    namespace: str
    uid: str
    netns: str
    port_mappings: tuple[PortMapping, ...] = ()
    dns: DNSConfig | None = None

    def cni_args(self) -> tuple[tuple[str, str], ...]:
        # IgnoreUnknown first: plugins that know none of the K8S_* keys must not refuse them.
        return (("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", self.namespace), ("K8S_POD_NAME", self.name),
                ("K8S_POD_INFRA_CONTAINER_ID", self.id), ("K8S_POD_UID", self.uid))

    def host_ports(self) -> list[PortMapping]:
        """The mappings that publish a port; kubelet also lists container ports with hostPort 0."""
        return [p for p in self.port_mappings if p.host_port > 0]

    def capability_args(self) -> dict[str, Any]:
        caps: dict[str, Any] = {}
        if self.host_ports():
            caps["portMappings"] = [p.to_runtime_config() for p in self.host_ports()]
        if self.dns is not None:
            caps["dns"] = {"servers": list(self.dns.servers), "searches": list(self.dns.searches),
                           "options": list(self.dns.options)}
        return caps


@dataclass(frozen=True)
class PodNetworkStatus:
    network: str
    interface: str
    ips: tuple[str, ...]
    result: Result = field(compare=False)

    @property
    def ip(self) -> str:
        """The CRI's primary IP (IPv4 if there is one); the rest are its additional IPs."""
        return self.ips[0] if self.ips else ""


@dataclass(frozen=True)
class NetworkStatus:
    ready: bool
    reason: str = ""
    message: str = ""


def _check_ports(pod: PodNetwork, net: NetworkConfigList) -> None:
    for p in pod.host_ports():
        if p.protocol.lower() not in _PROTOCOLS:
            raise InvalidArgument(f"port mapping {p.host_port}: unknown protocol {p.protocol!r}")
        if not 0 < p.container_port < 65536 or p.host_port > 65535:
            raise InvalidArgument(f"port mapping {p.host_port}->{p.container_port}: port out of range")
        if p.host_ip:
            try:
                ipaddress.ip_address(p.host_ip)
            except ValueError:
                raise InvalidArgument(f"port mapping {p.host_port}: invalid host IP {p.host_ip!r}") from None
    if pod.host_ports() and "portMappings" not in net.capabilities():
        raise FailedPrecondition(
            f"pod {pod.namespace}/{pod.name} asks for host ports but network {net.name!r} "
            f"({net.source or 'conf dir'}) has no plugin with the portMappings capability")


def _netns_alive(path: str) -> bool:
    if not path or not os.path.exists(path):
        return False
    return path.startswith("/proc/") or is_mountpoint(path)


class CNIManager:
    def __init__(self, state_dir: str, conf_dir: str = DEFAULT_CONF_DIR,
                 bin_dirs: Iterable[str] = DEFAULT_BIN_DIRS, ifname: str = "eth0",
                 loopback: bool = True) -> None:
        """`state_dir` (the runtime's `<state>/cri/cni`) holds the attachment cache (`results/`) and
        the short-lived stand-in namespaces of teardowns whose pod namespace is gone (`standin/`)."""
        self.conf_dir = conf_dir
        self.bin_dirs = list(bin_dirs)
        self.ifname = ifname
        self.loopback = loopback
        self.cache = AttachmentCache(os.path.join(state_dir, "results"))
        self.stand_ins = NetnsDir(os.path.join(state_dir, "standin"))
        self.invoker = Invoker(self.bin_dirs)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def network(self) -> NetworkConfigList:
        """The pod network as the conf dir says now (read on every call, so edits apply to new pods)."""
        net = load_default_network(self.conf_dir)
        for kind in net.types + (LOOPBACK.types if self.loopback else []):
            try:
                find_plugin(kind, self.bin_dirs)
            except PluginNotFound as exc:
                raise NetworkNotReady(exc.message) from None
        return net

    async def status(self) -> NetworkStatus:
        """The CRI Status's NetworkReady condition."""
        try:
            await asyncio.to_thread(self.network)
        except NetworkNotReady as exc:
            return NetworkStatus(False, exc.reason, exc.detail)
        return NetworkStatus(True)

    @contextlib.asynccontextmanager
    async def _locked(self, pod_id: str) -> AsyncIterator[None]:
        # Counted so the entry goes away with its last user: no lock per pod ever seen stays behind.
        lock, users = self._locks.get(pod_id, (asyncio.Lock(), 0))
        self._locks[pod_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[pod_id]
            if users == 1:
                del self._locks[pod_id]
            else:
                self._locks[pod_id] = (lock, users - 1)

    async def _add(self, net: NetworkConfigList, rt: RuntimeConf) -> dict[str, Any]:
        await asyncio.to_thread(self.cache.save, Attachment(net, rt))

        async def record(result: dict[str, Any]) -> None:
            await asyncio.to_thread(self.cache.save, Attachment(net, rt, result))

        return await self.invoker.add(net, rt, record)

    async def setup(self, pod: PodNetwork) -> PodNetworkStatus:
        """ADD the pod's networks; its IPs on eth0. On failure nothing stays attached."""
        net = await asyncio.to_thread(self.network)
        _check_ports(pod, net)
        if not await asyncio.to_thread(_netns_alive, pod.netns):
            raise FailedPrecondition(f"network namespace {pod.netns!r} of pod {pod.id} does not exist")
        args = pod.cni_args()
        async with self._locked(pod.id):
            if await asyncio.to_thread(self.cache.entries, pod.id):
                raise FailedPrecondition(f"pod {pod.id} already has its network set up; tear it down first")
            try:
                if self.loopback:
                    await self._add(LOOPBACK, RuntimeConf(pod.id, pod.netns, "lo", args))
                raw = await self._add(net, RuntimeConf(pod.id, pod.netns, self.ifname, args,
                                                       pod.capability_args()))
                result = parse_result(raw)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self._teardown_locked(pod.id)
                raise
        ips = tuple(ip.ip for ip in result.ips_on(self.ifname))
        return PodNetworkStatus(net.name, self.ifname, ips, result)

    async def check(self, pod_id: str) -> None:
        """CHECK the pod network against its cached ADD (the plugins verify the namespace still matches)."""
        async with self._locked(pod_id):
            entries = [e for e in await asyncio.to_thread(self.cache.entries, pod_id)
                       if e.rt.ifname == self.ifname]
            result = entries[0].result if entries else None
            if result is None:
                raise NotFound(f"pod {pod_id} has no network set up")
            await self.invoker.check(entries[0].network, entries[0].rt, result)

    async def status_of(self, pod_id: str) -> PodNetworkStatus | None:
        """The pod network's cached result (for the CRI's PodSandboxStatus after a restart)."""
        for entry in await asyncio.to_thread(self.cache.entries, pod_id):
            if entry.rt.ifname == self.ifname and entry.result is not None:
                result = parse_result(entry.result)
                ips = tuple(ip.ip for ip in result.ips_on(self.ifname))
                return PodNetworkStatus(entry.network.name, self.ifname, ips, result)
        return None

    async def _delete(self, entry: Attachment) -> None:
        if await asyncio.to_thread(_netns_alive, entry.rt.netns):
            await self.invoker.delete(entry.network, entry.rt, entry.result)
            return
        addresses: list[str] = []
        if entry.result is not None and entry.rt.ifname != "lo":
            with contextlib.suppress(InvalidNetworkConfig):  # an unreadable result still gets its DEL
                addresses = [str(ip.address) for ip in parse_result(entry.result).ips_on(entry.rt.ifname)]
        if not addresses:
            await self.invoker.delete(entry.network, replace(entry.rt, netns=""), entry.result)
            return
        name = f"{entry.rt.container_id}-{entry.rt.ifname}"
        path = await self.stand_ins.create_stand_in(name, entry.rt.ifname, addresses)
        try:
            await self.invoker.delete(entry.network, replace(entry.rt, netns=path), entry.result)
        finally:
            await self.stand_ins.remove(name)

    async def _teardown_locked(self, pod_id: str) -> None:
        errors: list[Exception] = []
        entries = await asyncio.to_thread(self.cache.entries, pod_id)
        # The reverse of setup: the pod network first, `lo` last.
        for entry in sorted(entries, key=lambda e: e.rt.ifname == "lo"):
            try:
                await self._delete(entry)
            except Exception as exc:  # noqa: BLE001 - the other attachments still get their DEL
                errors.append(exc)
                continue
            await asyncio.to_thread(self.cache.delete, entry)
        if errors:
            raise errors[0]

    async def teardown(self, pod_id: str) -> None:
        """DEL every network the pod was attached to, from the cache alone; idempotent."""
        async with self._locked(pod_id):
            await self._teardown_locked(pod_id)

    def attached(self) -> set[str]:
        """Pod ids with cached attachments (blocking: a directory walk, for start-up)."""
        return self.cache.container_ids()

    async def sweep(self, live: Iterable[str]) -> list[str]:
        """At start, before serving: tear down the networks of pods that are not `live` and the
        stand-in namespaces a crash left; the ids torn down."""
        keep = set(live)
        for name in await asyncio.to_thread(self.stand_ins.names):
            await self.stand_ins.remove(name)
        gone = sorted(await asyncio.to_thread(self.attached) - keep)
        for pod_id in gone:
            await self.teardown(pod_id)
        return gone
