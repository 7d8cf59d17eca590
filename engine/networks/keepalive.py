"""Letting go of a network's kept bridge: at `network rm`, and for every network when the engine stops.

The driver keeps a bridge network's bridge and rules up between containers. Once none is on it, only a
teardown that leaves the network empty makes the stack remove them, so a probe endpoint (a namespace
and an address of the network's own, for the moment) is set up and torn down as its last container.
Networks that containers still use are let go without a probe: their last container's teardown
removes what is left, as it did before the driver kept anything.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging

from engine.networks import ipam
from engine.networks.driver import Attachment, NetworkDriver
from engine.networks.model import Endpoint, Network
from engine.networks.netns import NetnsDir

log = logging.getLogger("engine.networks")


async def release(driver: NetworkDriver, netns: NetnsDir, net: Network, *, taken: list[str], wired: bool) -> None:
    """`taken`: the addresses the network's endpoints hold; `wired`: whether a container is on it now."""
    if not driver.kept(net):
        return
    if wired or not (net.subnet and net.gateway):
        await driver.let_go(net)
        return
    probe = f"probe-{net.id[:12]}"
    ip = ipam.allocate(ipaddress.IPv4Network(net.subnet), net.gateway,
                       ipaddress.IPv4Network(net.ip_range) if net.ip_range else None, taken)
    # No container is wired: an IPv6 address some stopped container keeps would clash with nothing.
    ip6 = ipam.allocate(ipaddress.IPv6Network(net.subnet6), net.gateway6, None, []) \
        if net.subnet6 and net.gateway6 else None
    a = Attachment(probe, probe, await netns.create(probe),
                   [(net, Endpoint(network_id=net.id, container_id=probe, id=probe, ip=ip, ip6=ip6,
                                   interface="eth0"))])
    try:
        try:
            await driver.setup(a)
        finally:
            await driver.let_go(net)
        await driver.teardown(a)
    except Exception as e:  # the network goes all the same; what is left of its bridge is the host's to see
        log.warning("network bridge not removed name=%s bridge=%s: %s", net.name, net.interface, e)
    else:
        log.info("network bridge removed name=%s bridge=%s", net.name, net.interface)
    finally:
        await asyncio.to_thread(netns.remove, probe)
