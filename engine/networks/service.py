"""Docker's network model over a network driver: networks, endpoints, sandboxes and published ports.

A container on bridge networks gets a network namespace of its own (a file under the exec root, so
it outlives the engine), an endpoint per network holding its address, and a sandbox record of what
was set up while it runs. Addresses and host ports are decided here under one lock; the driver only
applies them. What a start sets up, its stop (or the engine's reconciliation after a crash) takes down.
"""
from __future__ import annotations

import builtins
import asyncio
import contextlib
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from engine.errors import Conflict, Forbidden, InvalidArgument, NotFound
from engine.events import EventBus
from engine.networks import driver_options, embedded_dns, endpointcfg, ipam, keepalive, port_owner, views
from engine.networks.driver import Attachment, NetworkDriver
from engine.networks.etcfiles import DnsDefaults, EtcConfig
from engine.networks.model import BRIDGE, BUILTIN, HOST, NONE, Endpoint, Network, PublishedPort, Sandbox
from engine.networks.netns import NetnsDir
from engine.networks.ports import PortTable, docker_ports, requested
from engine.networks.sandbox_files import SandboxFiles
from engine.networks.store import NetworkStore

log = logging.getLogger("engine.networks")

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class NetworkService:
    def __init__(self, data_root: Path, exec_root: Path, driver: NetworkDriver, *, bridge_interface: str,
                 bridge_cidr: str | None, container_name: Callable[[str], str],
                 container_hostname: Callable[[str], str | None], events: EventBus,
                 dns: DnsDefaults = DnsDefaults(), binding_ip: str | None = None, mtu: int = 1500,
                 pools: tuple[ipam.Pool, ...] = ipam.DEFAULT_POOLS) -> None:
        """`dns`: the daemon's resolver defaults; `binding_ip` and `mtu`: the address the default bridge publishes
        ports on when a binding names none (dockerd's `ip`; unset: all of them) and its MTU; `pools`: where a
        network without a subnet of its own takes one."""
        self.store = NetworkStore(data_root / "networks.db")
        self.netns = NetnsDir(exec_root / "netns")
        self.driver = driver
        self.files = SandboxFiles(data_root / "containers", self.store, container_name, dns)
        # As dockerd, which makes its default bridge at each start: this start's `ip` and `mtu` are the ones in force.
        self._bridge_options = {driver_options.HOST_BINDING: binding_ip or "0.0.0.0", driver_options.MTU: str(mtu)}
        self._pools = pools
        self.ports = PortTable()
        self.container_name = container_name
        self.container_hostname = container_hostname
        self._bridge_interface = bridge_interface
        self._bridge_cidr = bridge_cidr
        self._events = events
        # Addresses, host ports and namespace set-up are decided one container at a time.
        self._lock = asyncio.Lock()

    # built-in networks and restart ----------------------------------------

    async def ensure_builtin(self) -> None:
        bridge = self.store.by_name(BRIDGE)
        if bridge is not None and any(bridge.options.get(k) != v for k, v in self._bridge_options.items()):
            bridge.options.update(self._bridge_options)
            await self.store.save(bridge)
        if bridge is None:
            if self._bridge_cidr:
                iface = ipaddress.IPv4Interface(self._bridge_cidr)
                subnet, gateway = iface.network, str(iface.ip)
            else:
                subnet = ipam.pick_subnet(self._taken_subnets(with_host_routes=True), self._pools)
                gateway = str(subnet.network_address + 1)
            await self.store.save(Network(
                id=secrets.token_hex(32), name=BRIDGE, driver="bridge", created=time.time(), subnet=str(subnet),
                gateway=gateway, interface=self._bridge_interface, dns=False,
                options={"com.docker.network.bridge.default_bridge": "true",
                         "com.docker.network.bridge.enable_ip_masquerade": "true",
                         **self._bridge_options, driver_options.BRIDGE_NAME: self._bridge_interface}))
        for name, driver in ((HOST, "host"), (NONE, "null")):
            if self.store.by_name(name) is None:
                await self.store.save(Network(id=secrets.token_hex(32), name=name, driver=driver, created=time.time()))

    async def reconcile(self, in_use: Callable[[str], bool]) -> None:
        """Take down the sandboxes of containers that stopped while the engine was away; hold the rest.

        `in_use(cid)` is asked as each one is decided, under the lock a start holds while it wires: a
        start that has not wired yet sets up afresh after any teardown here, one that has is in use.
        """
        async with self._lock:
            for sb in self.store.sandboxes():
                if in_use(sb.container_id):
                    self.ports.hold(sb.container_id, sb.ports)
                else:
                    await self._stop_locked(sb.container_id)
            for cid in self.netns.present():
                if not in_use(cid) and self.store.sandbox(cid) is None:
                    with contextlib.suppress(Exception):
                        self.netns.remove(cid)

    def _taken_subnets(self, with_host_routes: bool) -> list[ipaddress.IPv4Network]:
        taken = [ipaddress.IPv4Network(n.subnet) for n in self.store.all() if n.subnet]
        return taken + (ipam.host_routes() if with_host_routes else [])

    def _named_subnets(self) -> builtins.list[tuple[str, ipam.Subnet]]:
        return [(n.name, ipaddress.ip_network(s)) for n in self.store.all() for s in (n.subnet, n.subnet6) if s]

    # networks --------------------------------------------------------------

    def get(self, ref: str) -> Network:
        return self.store.get(ref)

    def list(self) -> list[Network]:
        return self.store.all()

    async def create(self, name: str, *, driver: str = "bridge", subnet: str | None = None,
                     gateway: str | None = None, ip_range: str | None = None, internal: bool = False,
                     attachable: bool = False, labels: dict[str, str] | None = None,
                     options: dict[str, str] | None = None, ipv6: bool = False, subnet6: str | None = None,
                     gateway6: str | None = None, ip_range6: str | None = None,
                     ipam_options: dict[str, str] | None = None) -> Network:
        if not _NAME.match(name or ""):
            raise InvalidArgument(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if driver not in ("bridge", ""):
            raise (Forbidden(f'only one instance of "{driver}" network is allowed') if driver in ("host", "null")
                   else NotFound(f'plugin "{driver}" not found'))
        async with self._lock:
            if name in BUILTIN:
                raise Forbidden(f"{name} is a pre-defined network and cannot be created")
            if self.store.by_name(name) is not None:
                raise Conflict(f"network with name {name} already exists")
            others = self._named_subnets()
            v4 = ipam.addresses(subnet, gateway, ip_range, 4, others,
                                lambda: ipam.pick_subnet(self._taken_subnets(with_host_routes=True), self._pools))
            v6 = ipam.addresses(subnet6, gateway6, ip_range6, 6, others,
                                lambda: ipam.pick_subnet6([s for _, s in others], str(self.files.root))) \
                if ipv6 else None
            nid = secrets.token_hex(32)
            driver_options.check(opts := dict(options or {}))
            interface = opts.get(driver_options.BRIDGE_NAME) or f"pe-{nid[:12]}"
            if len(interface) > 15:
                raise InvalidArgument(f"bridge name {interface!r} is longer than 15 characters")
            n = Network(id=nid, name=name, driver="bridge", created=time.time(), subnet=str(v4.subnet),
                        gateway=v4.gateway, ip_range=str(v4.ip_range) if v4.ip_range else None,
                        subnet6=str(v6.subnet) if v6 else None, gateway6=v6.gateway if v6 else None,
                        ip_range6=str(v6.ip_range) if v6 and v6.ip_range else None, internal=internal,
                        attachable=attachable, labels=labels or {}, options=opts, interface=interface, dns=True,
                        subnet_picked=not subnet, subnet6_picked=bool(v6) and not subnet6,
                        ipam_options=ipam_options)
            await self.store.save(n)
        log.info("network created name=%s id=%s subnet=%s subnet6=%s", name, nid[:12], n.subnet, n.subnet6)
        return n

    async def remove(self, ref: str, idle: Collection[str] = ()) -> tuple[Network, builtins.list[Endpoint]]:
        """The network goes, with the endpoints of `idle` containers (libnetwork has none for them): they come back."""
        n = self.store.get(ref)
        if n.builtin:
            raise Forbidden(f"{n.name} is a pre-defined network and cannot be removed")
        async with self._lock:
            users = self.store.endpoints_on(n.id)
            if any(e.container_id not in idle or e.interface for e in users):
                raise Forbidden(  # libnetwork's ActiveEndpointsError: dockerd's 403
                    f"error while removing network: network {n.name} id {n.id} has active endpoints")
            await self._release(n)
            await self.store.delete(n)
        log.info("network removed name=%s id=%s", n.name, n.id[:12])
        return n, users

    def users(self, n: Network, running: bool = False) -> builtins.list[str]:
        return [e.container_id for e in self.store.endpoints_on(n.id) if e.interface or not running]

    async def close(self) -> None:
        """At engine shutdown: the bridges kept between containers go, but for the containers still on them."""
        async with self._lock:
            for n in self.store.all():
                await self._release(n)

    async def _release(self, n: Network) -> None:
        wired = any(e.interface for e in self.store.endpoints_on(n.id))
        await keepalive.release(self.driver, self.netns, n, taken=self._ips_on(n), wired=wired)

    # containers: create, connect, disconnect, remove ----------------------

    def _network_for_mode(self, mode: str) -> Network:
        name = BRIDGE if mode in ("", "default") else mode
        return self.store.get(name)

    async def plan(self, cid: str, mode: str, endpoints: dict[str, Any] | None) -> str | None:
        """At create: the endpoints a container will have, and the namespace the runtime puts it in: the
        runtime's `netns` option, "host", None (a fresh namespace with loopback only) or the path of the namespace
        file the engine makes at start."""
        mode = mode or "default"
        if mode == HOST:
            return "host"
        if mode == NONE:
            return None
        primary = self._network_for_mode(mode)
        if primary.driver == "host":
            return "host"
        if primary.driver == "null":
            return None
        wanted: dict[str, dict[str, Any]] = {primary.id: {}}
        for ref, cfg in (endpoints or {}).items():
            # The CLI names the primary network as the mode says, "default" included.
            n = primary if ref in (mode, "default") else self.store.get(ref)
            if n.driver != "bridge":
                raise InvalidArgument(f"container cannot be connected to {n.name} and {primary.name} at once")
            wanted[n.id] = {**wanted.get(n.id, {}), **(cfg or {})}
        async with self._lock:
            made: list[Endpoint] = []
            try:
                for nid, cfg in wanted.items():
                    if self.store.endpoint(nid, cid) is None:  # at a first start, one a connect made since stays
                        made.append(await self._add_endpoint(self.store.get(nid), cid, cfg))
            except BaseException:
                for e in made:
                    await self.store.delete_endpoint(e)
                raise
        await self.files.touch(cid)
        return self.netns.path(cid)

    async def _add_endpoint(self, n: Network, cid: str, cfg: dict[str, Any]) -> Endpoint:
        if self.store.endpoint(n.id, cid) is not None:
            raise Forbidden(f"endpoint with name {self.container_name(cid)} already exists in network {n.name}")
        aliases = [str(a) for a in (cfg.get("Aliases") or [])]
        if aliases and not n.dns:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        asked = cfg.get("IPAMConfig") or {}
        static, static6 = str(asked.get("IPv4Address") or ""), str(asked.get("IPv6Address") or "")
        ip = ip6 = None
        if (static or static6) and not n.dns:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        if static:
            assert n.subnet and n.gateway
            ip = ipam.check_static(ipaddress.IPv4Network(n.subnet), n.gateway, static, self._ips_on(n), n.subnet_picked)
        if static6:
            if n.subnet6 is None or n.gateway6 is None:
                raise InvalidArgument(f"invalid IPv6 address {static6}: network {n.name} has no IPv6 (EnableIPv6)")
            ip6 = ipam.check_static(ipaddress.IPv6Network(n.subnet6), n.gateway6, static6, self._ips6_on(n),
                                    n.subnet6_picked)
        e = Endpoint(network_id=n.id, container_id=cid, id=secrets.token_hex(32), ip=ip, static_ip=bool(static),
                     ip6=ip6, static_ip6=bool(static6),
                     static_mac=endpointcfg.mac(str(cfg.get("MacAddress") or "")), aliases=aliases,
                     links=[endpointcfg.link(str(link)) for link in cfg.get("Links") or []])
        await self.store.save_endpoint(e)
        return e

    def _ips_on(self, n: Network) -> builtins.list[str]:
        return [e.ip for e in self.store.endpoints_on(n.id) if e.ip]

    def _ips6_on(self, n: Network) -> builtins.list[str]:
        return [e.ip6 for e in self.store.endpoints_on(n.id) if e.ip6]

    async def connect(self, ref: str, cid: str, cfg: dict[str, Any], *, running: bool, etc: EtcConfig,
                      mode: str) -> None:
        # The NetworkMode decides, not the endpoints: compose disconnects and reconnects to set aliases.
        n = self.store.get(ref)
        if n.driver != "bridge":
            raise Forbidden(f"container cannot be disconnected from {n.name} network or connected to {n.name} network")
        if mode in ("host", "none") or mode.startswith("container:"):
            raise Forbidden("container cannot be connected to other networks: its network mode is not bridge")
        async with self._lock:
            # dockerd takes a connect of a container that does not run as its new settings for that network.
            async with self.store.set_aside(n.id, cid) if not running else contextlib.nullcontext():
                e = await self._add_endpoint(n, cid, cfg)
            if not running or (sb := self.store.sandbox(cid)) is None:
                return
            try:
                if n.ipv6:
                    await self.netns.allow_ipv6(sb.netns)
                # Every network carries the ports (the first one's rules answer): one disconnected, they go on.
                await self._wire(sb, [e], etc)
            except BaseException:
                await self.store.delete_endpoint(e)
                raise

    async def renamed(self, cid: str, old: str, new: str) -> None:
        """A running container's new name answers on its networks' DNS, the old one no more (as dockerd)."""
        async with self._lock:
            if self.store.sandbox(cid) is not None and self.store.endpoints_of(cid):
                await self.driver.rename(cid, old, new)

    async def disconnect(self, ref: str, cid: str, *, running: bool) -> None:
        n = self.store.get(ref)
        e = self.store.endpoint(n.id, cid)
        if e is None and n.driver in ("host", "null"):
            # Its namespace is the host's or runc's own, fixed at create: there is nothing to unplug.
            raise Forbidden(f"container cannot be disconnected from {n.name} network or connected to {n.name} network")
        if e is None:
            raise NotFound(f"container {cid} is not connected to {'network' if running else 'the network'} {n.name}")
        async with self._lock:
            sb = self.store.sandbox(cid) if running and e.interface else None
            if sb is not None:
                await self.driver.teardown(Attachment(cid, self.container_name(cid), sb.netns, [(n, e)], sb.ports))
            await self.store.delete_endpoint(e)
            if sb is not None:
                await embedded_dns.point(sb.netns, embedded_dns.target(self.store, cid), clear=True)
        if sb is not None:
            self._announce("disconnect", n, cid)

    async def forget(self, cid: str) -> None:
        """At container removal: whatever still runs is taken down, the endpoints go."""
        await self.stop(cid)
        for e in self.store.endpoints_of(cid):
            await self.store.delete_endpoint(e)
        self.files.remove(cid)

    def joined_netns(self, other_cid: str) -> str:
        """For --network container:<other>: the namespace to join."""
        if self.store.sandbox(other_cid) is None and not self.store.endpoints_of(other_cid):
            raise Conflict(f"cannot join the network namespace of container {other_cid[:12]}: it has none of "
                           "the engine's own")
        return self.netns.path(other_cid)

    # containers: start and stop -----------------------------------------

    def wired(self, cid: str) -> bool:
        return bool(self.store.endpoints_of(cid))

    def bridge_address(self, cid: str) -> str | None:
        """The container's address on the default bridge while it runs there (what a legacy link points to)."""
        bridge = self.store.by_name(BRIDGE)
        e = self.store.endpoint(bridge.id, cid) if bridge is not None else None
        return e.ip if e is not None and e.interface else None

    def _announce(self, action: str, n: Network, cid: str) -> None:
        # dockerd tells of a container joining or leaving a network only while it runs (start, stop, connect).
        self._events.network(action, n.id, n.name, n.driver, container=cid)

    def _endpointless(self, mode: str) -> Network | None:
        """The host or none network a container of that mode is on without an endpoint of ours (by name or id;
        "default", "bridge", "container:…" and user-defined networks are none of them)."""
        n = self.store.find(mode) if mode else None
        return n if n is not None and n.driver in ("host", "null") else None

    def is_host(self, mode: str) -> bool:
        """Whether NetworkMode `mode` is the host's network (by name or id)."""
        return (n := self._endpointless(mode)) is not None and n.driver == "host"

    async def start(self, cid: str, *, etc: EtcConfig, exposed: Iterable[str],
                    port_bindings: dict[str, Any] | None, publish_all: bool,
                    netns_ready: asyncio.Event | None = None, mode: str = "") -> None:
        """Namespace, addresses, interfaces, ports, /etc files: all before the process runs.

        `netns_ready` is set as soon as the namespace file exists: the runtime may create the task (which joins
        it) while the interfaces are still being wired. `mode` (NetworkMode) names the host or none network."""
        endpoints = self.store.endpoints_of(cid)
        if not endpoints:
            if netns_ready is not None:
                netns_ready.set()
            if (builtin := self._endpointless(mode)) is not None:
                self._announce("connect", builtin, cid)
            return
        nets = [self.store.get(e.network_id) for e in endpoints]
        # No port is published through internal networks alone: dockerd maps none there.
        wanted = [] if all(n.internal for n in nets) else driver_options.bind_default(
            requested(exposed, port_bindings, publish_all), nets[0].options)
        async with self._lock:
            await self._stop_locked(cid)
            # Ports first: a port conflict is refused before anything exists. dockerd's words lead (compose
            # looks for them to say "Host is already in use by another container").
            try:
                ports = await port_owner.explained(lambda: self.ports.allocate(cid, wanted, self.container_name))
            except Conflict as e:
                raise Conflict(f"driver failed programming external connectivity on endpoint "
                               f"{self.container_name(cid)} ({endpoints[0].id}): {e.message}") from None
            try:
                netns = await self.netns.create(cid, ipv6=any(n.ipv6 for n in nets))
            except BaseException:
                self.ports.release(cid)
                raise
            if netns_ready is not None:
                netns_ready.set()
            sb = Sandbox(container_id=cid, netns=netns, ports=ports)
            try:
                await self._wire(sb, endpoints, etc)
            except BaseException:
                await self._stop_locked(cid, sb)
                raise
        log.info("network up container=%s networks=%d ports=%d", cid[:12], len(endpoints), len(sb.ports))

    async def _wire(self, sb: Sandbox, new: builtins.list[Endpoint], etc: EtcConfig) -> None:
        cid = sb.container_id
        fresh = {e.id for e in new}
        used = {e.interface for e in self.store.endpoints_of(cid) if e.interface and e.id not in fresh}
        pairs = []
        for e in new:
            n = self.store.get(e.network_id)
            assert n.subnet and n.gateway
            if e.ip is None:
                e.ip = ipam.allocate(ipaddress.IPv4Network(n.subnet), n.gateway,
                                     ipaddress.IPv4Network(n.ip_range) if n.ip_range else None, self._ips_on(n))
            if e.ip6 is None and n.subnet6 and n.gateway6:
                e.ip6 = ipam.allocate(ipaddress.IPv6Network(n.subnet6), n.gateway6,
                                      ipaddress.IPv6Network(n.ip_range6) if n.ip_range6 else None, self._ips6_on(n))
            prefix = driver_options.iface_prefix(n.options)
            e.interface = next(f"{prefix}{i}" for i in range(64) if f"{prefix}{i}" not in used)
            used.add(e.interface)
            pairs.append((n, e))
        try:
            result = await self.driver.setup(Attachment(cid, self.container_name(cid), sb.netns, pairs, sb.ports,
                                                        hostname=self.container_hostname(cid)))
        except BaseException:
            for e in new:
                e.interface = None
                if not e.static_ip:
                    e.ip = None
                if not e.static_ip6:
                    e.ip6 = None
            raise
        for n, e in pairs:
            iface = result.get(n.id)
            if iface is not None:
                e.mac = iface.mac
        await self.store.save_sandbox(sb, new)
        await embedded_dns.point(sb.netns, embedded_dns.target(self.store, cid))
        await asyncio.to_thread(self.files.write, cid, etc)
        for n, _ in pairs:
            self._announce("connect", n, cid)

    async def stop(self, cid: str, mode: str = "") -> None:
        """After the task is gone (or never came): interfaces, rules, namespace and dynamic addresses go.

        With the `mode` of a run that started, a host or none container leaves that network too.
        """
        if (builtin := self._endpointless(mode)) is not None:
            self._announce("disconnect", builtin, cid)
        if self.store.sandbox(cid) is None and not self.netns.exists(cid):
            return
        async with self._lock:
            await self._stop_locked(cid)

    async def _stop_locked(self, cid: str, pending: Sandbox | None = None) -> None:
        sb = self.store.sandbox(cid) or pending
        if sb is not None:
            endpoints = [e for e in self.store.endpoints_of(cid) if e.interface]
            pairs = [(self.store.get(e.network_id), e) for e in endpoints]
            await self.driver.teardown(Attachment(cid, self.container_name(cid), sb.netns, pairs, sb.ports))
            for e in endpoints:
                e.interface, e.mac = None, None
                if not e.static_ip:
                    e.ip = None
                if not e.static_ip6:
                    e.ip6 = None
            await self.store.delete_sandbox(cid, endpoints)
            for n, _ in pairs:
                self._announce("disconnect", n, cid)
        self.ports.release(cid)
        await asyncio.to_thread(self.netns.remove, cid)

    # views ---------------------------------------------------------------

    def settings(self, cid: str, mode: str, exposed: Iterable[str]) -> dict[str, Any]:
        """NetworkSettings of a container's inspect."""
        sb = self.store.sandbox(cid)
        nets: dict[str, Any] = {}
        for e in self.store.endpoints_of(cid):
            n = self.store.get(e.network_id)
            nets[n.name] = views.endpoint(n, e, self._dns_names(cid, e.aliases) if n.dns else None)
        if not nets and mode in (HOST, NONE):
            builtin = self.store.by_name(mode)
            nets[mode] = views.no_endpoint(builtin.id if builtin else "")
        default = nets.get(BRIDGE) or {}
        return {
            "Bridge": "", "SandboxID": cid if sb else "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": docker_ports(self._carried(cid), exposed) if sb else {},
            "SandboxKey": sb.netns if sb else "", "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": default.get("EndpointID", ""), "Gateway": default.get("Gateway", ""),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": default.get("IPAddress", ""),
            "IPPrefixLen": default.get("IPPrefixLen", 0), "IPv6Gateway": "",
            "MacAddress": default.get("MacAddress", ""), "Networks": nets,
        }

    def _carried(self, cid: str) -> builtins.list[PublishedPort]:
        """The published ports while a network carries them: none once the last one is disconnected."""
        sb = self.store.sandbox(cid)
        return sb.ports if sb is not None and any(e.interface for e in self.store.endpoints_of(cid)) else []

    def _dns_names(self, cid: str, aliases: Iterable[str]) -> builtins.list[str]:
        """What the network's DNS answers for the container, its primary name first (it names the PTR record)."""
        names = [self.container_name(cid), *aliases, cid[:12], self.container_hostname(cid) or ""]
        return [n for n in dict.fromkeys(names) if n]

    def published(self, cid: str) -> builtins.list[dict[str, Any]]:
        """`Ports` of containers/json."""
        out = []
        for m in self._carried(cid):
            for i in range(m.count):
                out.append({"IP": m.host_ip or "0.0.0.0", "PrivatePort": m.container_port + i,
                            "PublicPort": m.host_port + i, "Type": m.protocol})
        return out

    def inspect(self, n: Network) -> dict[str, Any]:
        return views.network(n, self.store.endpoints_on(n.id), self.container_name)
