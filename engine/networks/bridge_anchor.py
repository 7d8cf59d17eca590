"""A bridge network's anchor: a port that keeps its bridge (and netavark's rules for it) up between containers.

netavark removes a bridge and the network's firewall chains when the last container's interface leaves
it, and makes them again for the next container: about 0.2 s a run when containers come and go one at a
time. dockerd keeps its bridges from network create to network remove. A persistent tap device that is a
port of the bridge (down, no address, no traffic) is one more port to netavark, so its teardown of the
last container leaves the bridge and the network's rules in place. Removing the anchor makes the next
teardown that leaves the bridge empty the complete one again.
"""
from __future__ import annotations

import asyncio
import logging
import os

from engine.networks.model import Network

log = logging.getLogger("engine.networks.anchor")

PREFIX = "pa-"


def name(net: Network) -> str:
    # 15 characters, the kernel's limit on interface names; the id keeps two engines' anchors apart.
    return PREFIX + net.id[:12]


def held(net: Network) -> bool:
    return os.path.exists(f"/sys/class/net/{name(net)}")


def _master(link: str) -> str | None:
    try:
        return os.path.basename(os.readlink(f"/sys/class/net/{link}/master"))
    except OSError:
        return None


async def _ip(*args: str) -> str | None:
    """`ip ARGS`; the error it printed, or None."""
    proc = await asyncio.create_subprocess_exec("ip", *args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode == 0:
        return None
    return err.decode(errors="replace").strip() or f"exit status {proc.returncode}"


async def hold(net: Network) -> bool:
    """Make (or re-attach) the anchor of a network whose bridge netavark has just set up."""
    bridge, anchor = net.interface, name(net)
    if not bridge or _master(anchor) == bridge:
        return bool(bridge)
    if not held(net) and (err := await _ip("tuntap", "add", "dev", anchor, "mode", "tap")):
        # Without a tap device (no /dev/net/tun) the bridge goes with its last container, as netavark does.
        log.warning("bridge %s not kept between containers: %s", bridge, err)
        return False
    if err := await _ip("link", "set", "dev", anchor, "master", bridge):
        log.warning("bridge %s not kept between containers: %s", bridge, err)
        await _ip("link", "del", "dev", anchor)
        return False
    log.debug("bridge %s held by %s", bridge, anchor)
    return True


async def release(net: Network) -> None:
    if held(net) and (err := await _ip("link", "del", "dev", name(net))):
        log.warning("cannot remove %s: %s", name(net), err)
