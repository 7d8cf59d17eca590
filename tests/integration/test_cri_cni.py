"""Pod networking through Debian's CNI plugins (bridge, host-local, portmap, firewall, loopback).

Every test works on its own bridge (`cnitest0`), subnet (10.250.77.0/24) and network name, with
its conf dir, IPAM data dir, attachment cache and namespaces under the test's tmp dir; leak counts
look only at those, so engines or other CNI users on the host do not disturb them.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.cri.cni.defaults import write_default_conflist
from runtime.cri.cni.errors import PluginError
from runtime.cri.cni.manager import CNIManager, PodNetwork, PortMapping
from runtime.cri.cni.netns import NetnsDir

BIN_DIRS = ["/usr/lib/cni", "/opt/cni/bin"]
BRIDGE = "cnitest0"
SUBNET = "10.250.77.0/24"
SUBNET6 = "fd00:250:77::/64"
NETWORK = "cnitest-net"
_PREFIX = "10.250.77."
_PREFIX6 = "fd00:250:77:"

_missing = [t for t in ("unshare", "nsenter", "ip", "iptables-save", "ip6tables-save", "busybox") if not shutil.which(t)]
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces, bridges and iptables need root"),
    pytest.mark.skipif(not any(os.path.exists(f"{d}/bridge") for d in BIN_DIRS),
                       reason="the CNI plugins are not installed (Debian: containernetworking-plugins)"),
    pytest.mark.skipif(bool(_missing), reason=f"missing host tools: {_missing}"),
]


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


@dataclass
class Counts:
    veths: int
    allocations: int
    rules: int
    netns: int


class CNIEnv:
    def __init__(self, root: Path, ipv6_subnet: str | None = None) -> None:
        self.root = root
        self.conf = root / "conf"
        self.ipam = root / "ipam"
        self.state = root / "state"
        write_default_conflist(str(self.conf), NETWORK, BRIDGE, SUBNET, str(self.ipam),
                               ipv6_subnet=ipv6_subnet)
        self.manager = self.new_manager()
        self.netns = NetnsDir(str(root / "netns"))
        self.our_chains: set[str] = set()

    def new_manager(self) -> CNIManager:
        """A manager as a restarted runtime would make it: nothing shared but the state on disk."""
        return CNIManager(str(self.state), conf_dir=str(self.conf), bin_dirs=BIN_DIRS)

    async def pod(self, n: int, ports: tuple[PortMapping, ...] = ()) -> PodNetwork:
        pod_id = f"cnitest-pod{n}"
        path = await self.netns.create(pod_id)
        return PodNetwork(pod_id, f"pod{n}", "cni-test", f"uid-{n}", path, ports)

    def our_rules(self) -> list[str]:
        dump = _run("iptables-save") + _run("ip6tables-save")
        lines = [line for line in dump.splitlines()
                 if _PREFIX in line or _PREFIX6 in line or f'name: \\"{NETWORK}\\"' in line or "cnitest-pod" in line]
        for line in lines:
            for chain in re.findall(r"(?:-A|-j) (CNI-[0-9a-f]{8,}|CNI-DN-[0-9a-f]+)", line):
                self.our_chains.add(chain)
        declared = [line for line in dump.splitlines()
                    if line.startswith(":") and line[1:].split(" ")[0] in self.our_chains]
        return lines + declared

    def counts(self) -> Counts:
        veths = len(_run("ip", "-o", "link", "show", "master", BRIDGE, "type", "veth").splitlines())
        leases = self.ipam / NETWORK
        allocations = len([p for p in leases.iterdir() if _is_ip(p.name)]) if leases.is_dir() else 0
        standins = self.state / "standin"
        netns = len(self.netns.names()) + (len(os.listdir(standins)) if standins.is_dir() else 0)
        return Counts(veths, allocations, len(self.our_rules()), netns)

    async def cleanup(self) -> None:
        await self.new_manager().sweep(live=[])
        for name in self.netns.names():
            await self.netns.remove(name)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@pytest.fixture
async def cni(tmp_path: Path) -> AsyncIterator[CNIEnv]:
    env = CNIEnv(tmp_path)
    try:
        yield env
    finally:
        await env.cleanup()


@pytest.fixture
async def cni_dual(tmp_path: Path) -> AsyncIterator[CNIEnv]:
    env = CNIEnv(tmp_path, ipv6_subnet=SUBNET6)
    try:
        yield env
    finally:
        await env.cleanup()


async def _in_netns(path: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, ["nsenter", f"--net={path}", *cmd],
                                   capture_output=True, text=True, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_two_pods_get_addresses_and_reach_each_other(cni: CNIEnv) -> None:
    assert (await cni.manager.status()).ready
    a, b = await cni.pod(1), await cni.pod(2)
    sa, sb = await cni.manager.setup(a), await cni.manager.setup(b)
    subnet = ipaddress.ip_network(SUBNET)
    assert sa.interface == "eth0" and sa.network == NETWORK
    assert ipaddress.ip_address(sa.ip) in subnet and ipaddress.ip_address(sb.ip) in subnet
    assert sa.ip != sb.ip
    ping = await _in_netns(a.netns, "busybox", "ping", "-c", "1", "-W", "5", sb.ip)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    ping = await _in_netns(b.netns, "busybox", "ping", "-c", "1", "-W", "5", sa.ip)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    lo = await _in_netns(a.netns, "busybox", "ping", "-c", "1", "-W", "5", "127.0.0.1")
    assert lo.returncode == 0, "the loopback plugin brings lo up"
    cached = await cni.new_manager().status_of(a.id)
    assert cached is not None and cached.ips == sa.ips


async def test_dual_stack_pods_reach_each_other_over_ipv6(cni_dual: CNIEnv) -> None:
    start = cni_dual.counts()
    a, b = await cni_dual.pod(7), await cni_dual.pod(8)
    sa, sb = await cni_dual.manager.setup(a), await cni_dual.manager.setup(b)
    assert [ipaddress.ip_address(ip).version for ip in sa.ips] == [4, 6]  # the CRI's primary IP is v4
    assert ipaddress.ip_address(sb.ips[1]) in ipaddress.ip_network(SUBNET6)
    ping = await _in_netns(a.netns, "busybox", "ping", "-c", "1", "-W", "5", sb.ips[1])
    assert ping.returncode == 0, ping.stdout + ping.stderr
    await cni_dual.manager.teardown(a.id)
    await cni_dual.netns.remove(a.id)
    await cni_dual.netns.remove(b.id)  # lost before its teardown: both families' rules still go
    await cni_dual.manager.teardown(b.id)
    assert cni_dual.counts() == start


_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen()
print("ready", flush=True)
conn, _ = s.accept()
conn.sendall(b"hello from the pod")
conn.close()
"""


async def test_host_port_on_localhost_reaches_the_pod(cni: CNIEnv) -> None:
    port = _free_port()
    pod = await cni.pod(3, (PortMapping(container_port=8080, host_port=port, protocol="TCP",
                                        host_ip="127.0.0.1"),))
    await cni.manager.setup(pod)
    server = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={pod.netns}", sys.executable, "-c", _SERVER, stdout=asyncio.subprocess.PIPE)
    try:
        assert server.stdout is not None
        assert (await server.stdout.readline()).strip() == b"ready"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.read() == b"hello from the pod"
        writer.close()
    finally:
        if server.returncode is None:
            server.kill()
        await server.wait()
    await cni.manager.teardown(pod.id)
    assert not any(str(port) in line for line in cni.our_rules())


async def test_thirty_cycles_leave_nothing_behind(cni: CNIEnv) -> None:
    start = cni.counts()
    port = _free_port()
    for n in range(30):
        pod = await cni.pod(100 + n, (PortMapping(8080, port, "tcp", "127.0.0.1"),))
        status = await cni.manager.setup(pod)
        assert status.ip.startswith(_PREFIX)
        if n == 0:
            during = cni.counts()
            assert (during.veths, during.allocations) == (start.veths + 1, start.allocations + 1)
            assert during.rules > start.rules and cni.our_chains
        await cni.manager.teardown(pod.id)
        await cni.netns.remove(pod.id)
    assert cni.counts() == start
    assert cni.manager.attached() == set()


async def test_a_failed_add_leaves_nothing_behind(cni: CNIEnv) -> None:
    start = cni.counts()
    conflist = next(cni.conf.iterdir())
    doc = json.loads(conflist.read_text())
    # The last plugin fails after bridge, host-local and portmap did their part.
    doc["plugins"].append({"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.no_such_knob": "1"}})
    conflist.write_text(json.dumps(doc))
    pod = await cni.pod(9, (PortMapping(8080, _free_port(), "tcp", "127.0.0.1"),))
    with pytest.raises(PluginError) as info:
        await cni.manager.setup(pod)
    assert (info.value.plugin, info.value.command) == ("tuning", "ADD")
    assert "no_such_knob" in str(info.value)
    assert cni.manager.attached() == set()
    await cni.netns.remove(pod.id)
    assert cni.counts() == start


async def test_ten_pods_at_a_time(cni: CNIEnv) -> None:
    start = cni.counts()
    pods = await asyncio.gather(*(cni.pod(200 + n) for n in range(10)))
    statuses = await asyncio.gather(*(cni.manager.setup(p) for p in pods))
    assert len({s.ip for s in statuses}) == 10
    assert cni.counts().allocations == start.allocations + 10
    await asyncio.gather(*(cni.manager.teardown(p.id) for p in pods))
    await asyncio.gather(*(cni.netns.remove(p.id) for p in pods))
    assert cni.counts() == start


async def test_teardown_after_the_netns_is_gone_works_from_the_cache(cni: CNIEnv) -> None:
    start = cni.counts()
    lost = await cni.pod(4, (PortMapping(8080, _free_port(), "tcp", "127.0.0.1"),))
    kept = await cni.pod(5)
    await cni.manager.setup(lost)
    await cni.manager.setup(kept)
    # A crash: the namespace is gone, the conf dir changed, a new runtime starts with only its state dir.
    await cni.netns.remove(lost.id)
    for path in cni.conf.iterdir():
        path.unlink()
    restarted = cni.new_manager()
    assert not (await restarted.status()).ready
    assert restarted.attached() == {lost.id, kept.id}
    assert await restarted.sweep(live=[kept.id]) == [lost.id]
    assert restarted.attached() == {kept.id}
    await restarted.teardown(lost.id)  # idempotent
    await restarted.teardown(kept.id)
    await cni.netns.remove(kept.id)
    assert cni.counts() == start


async def test_check_finds_a_pod_interface_that_changed(cni: CNIEnv) -> None:
    start = cni.counts()
    pod = await cni.pod(6)
    await cni.manager.setup(pod)
    await cni.manager.check(pod.id)
    # A changed MAC rather than a deleted eth0: the bridge plugin's DEL finds the addresses it
    # masquerades on eth0 itself, so the pod must keep them for the teardown below to be complete.
    changed = await _in_netns(pod.netns, "ip", "link", "set", "eth0", "address", "02:42:de:ad:be:ef")
    assert changed.returncode == 0, changed.stderr
    with pytest.raises(PluginError) as info:
        await cni.manager.check(pod.id)
    assert (info.value.plugin, info.value.command) == ("bridge", "CHECK")
    await cni.manager.teardown(pod.id)
    await cni.netns.remove(pod.id)
    assert cni.counts() == start
