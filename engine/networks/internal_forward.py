"""Traffic between the containers of an `--internal` network, on hosts that filter bridged traffic.

netavark 1.4 writes no firewall rule for an internal network: it has no NAT and no way out. Where
br_netfilter passes bridged frames through iptables and the FORWARD policy is DROP (what dockerd, ufw and
firewalld leave behind), its containers then cannot reach each other. dockerd accepts what stays on such
a bridge; so does the one rule here, per internal bridge: added when a container is wired to it, removed
once the network stack has removed the bridge. It is the only rule the engine writes itself.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil

from engine.networks.model import Network

log = logging.getLogger("engine.networks.internal")

_COMMENT = "pyengine: within an internal network"


def _rule(bridge: str) -> list[str]:
    return ["FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment", _COMMENT, "-j", "ACCEPT"]


class InternalForward:
    def __init__(self) -> None:
        self._allowed: set[str] = set()  # bridges whose rule this process has seen in place

    async def allow(self, nets: list[Network]) -> None:
        for net in nets:
            if not net.internal or not net.interface or net.interface in self._allowed:
                continue
            for tool in _tools(net):
                if await _iptables(tool, "-C", *_rule(net.interface)) != 0:
                    if await _iptables(tool, "-I", *_rule(net.interface)) != 0:
                        log.warning("could not allow traffic within internal network %s (%s)", net.name, tool)
            self._allowed.add(net.interface)

    async def forget_removed(self, nets: list[Network]) -> None:
        """The rules of internal bridges the network stack has just removed."""
        for net in nets:
            if not net.internal or not net.interface or os.path.exists(f"/sys/class/net/{net.interface}"):
                continue
            for tool in _tools(net):
                while await _iptables(tool, "-D", *_rule(net.interface)) == 0:
                    pass
            self._allowed.discard(net.interface)


def _tools(net: Network) -> list[str]:
    return ["iptables", "ip6tables"] if net.subnet6 else ["iptables"]


async def _iptables(tool: str, *args: str) -> int:
    binary = shutil.which(tool)
    if binary is None:
        return 1
    proc = await asyncio.create_subprocess_exec(binary, "-w", *args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait()
