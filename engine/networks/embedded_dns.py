"""dockerd's embedded DNS address, 127.0.0.11, for containers on user-defined networks.

dockerd runs a resolver inside each container's network namespace and names 127.0.0.11 in its resolv.conf, and
configurations name that address themselves (nginx's `resolver 127.0.0.11;` in compose projects). Here
aardvark-dns answers on each network's gateway, so the container's namespace gets NAT rules instead: a query to
127.0.0.11:53 (udp or tcp) goes to the gateway of its first network with DNS, and leaves with the container's
address on that network. `route_localnet` lets the namespace route a packet whose source is still loopback out of
its interface, where the rule rewrites the source.
"""
from __future__ import annotations

import asyncio

from engine.errors import Internal
from engine.networks.store import NetworkStore

ADDRESS = "127.0.0.11"

_EMPTY_NAT = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"


def target(store: NetworkStore, cid: str) -> tuple[str, str] | None:
    """(gateway, the container's address there) of the container's first wired network with DNS."""
    for e in store.endpoints_of(cid):
        n = store.get(e.network_id)
        if n.dns and n.gateway and e.ip and e.interface:
            return n.gateway, e.ip
    return None


def rules(to: tuple[str, str] | None) -> bytes:
    """The namespace's whole nat table: nothing else in a container's own namespace uses it."""
    if to is None:
        return (_EMPTY_NAT + "COMMIT\n").encode()
    gateway, address = to
    return (_EMPTY_NAT
            + "".join(f"-A OUTPUT -d {ADDRESS}/32 -p {proto} --dport 53 -j DNAT --to-destination {gateway}:53\n"
                      for proto in ("udp", "tcp"))
            + f"-A POSTROUTING -s 127.0.0.0/8 -d {gateway}/32 -j SNAT --to-source {address}\nCOMMIT\n").encode()


async def point(netns: str, to: tuple[str, str] | None, *, clear: bool = False) -> None:
    """Point 127.0.0.11 in the namespace at `to` (see `target`); with None, at nothing, which costs nothing unless
    `clear` (a disconnect may have taken the network it pointed at): a namespace on the default bridge alone, as
    dockerd's, has no embedded DNS."""
    if to is None and not clear:
        return
    if to is not None:
        await _run(netns, ["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"])
    await _run(netns, ["iptables-restore"], rules(to))


async def _run(netns: str, argv: list[str], stdin: bytes | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns}", *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(stdin)
    if proc.returncode:
        raise Internal(f"pointing {ADDRESS} at the network's DNS failed: {argv[0]}: "
                       f"{err.decode(errors='replace').strip()}")
