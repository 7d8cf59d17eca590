"""The network driver over netavark and aardvark-dns (Podman's network stack, Debian's packages).

netavark makes the bridge, the veth pair, the addresses, the NAT and port-forwarding firewall rules
(iptables here) and starts aardvark-dns for name resolution on networks that ask for it; `teardown`
with the same description removes what `setup` made, the bridge and its rules too once its last
container is gone, unless the bridge's anchor (`bridge_anchor`) keeps them. The engine keeps the
addresses (our IPAM) and hands them over as static IPs.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from engine.errors import Internal, Unavailable
from engine.networks import bridge_anchor, driver_options
from engine.networks.driver import Attachment, Interface
from engine.networks.internal_forward import InternalForward
from engine.networks.model import Network

log = logging.getLogger("engine.networks.netavark")

_SEARCH = ("/usr/libexec/podman", "/usr/lib/podman")


def find(binary: str) -> str | None:
    for d in _SEARCH:
        if os.access(os.path.join(d, binary), os.X_OK):
            return os.path.join(d, binary)
    return shutil.which(binary)


class NetavarkDriver:
    name = "netavark"

    def __init__(self, config_dir: Path) -> None:
        self._config_dir = config_dir
        self._netavark = find("netavark")
        self._aardvark = find("aardvark-dns")
        # netavark takes its own file lock, but aardvark's configuration is rewritten per call:
        # one call at a time keeps concurrent starts from racing on it.
        self._lock = asyncio.Lock()
        self._internal = InternalForward()

    def missing(self) -> str | None:
        if self._netavark is None:
            return "netavark is not installed (Debian package netavark)"
        if self._aardvark is None:
            return "aardvark-dns is not installed (Debian package aardvark-dns)"
        return None

    def _options(self, a: Attachment) -> dict[str, Any]:
        networks, info = {}, {}
        for index, (net, ep) in enumerate(a.endpoints):
            networks[_stack_name(net)] = {
                "interface_name": ep.interface or f"eth{index}",
                "static_ips": [ip for ip in (ep.ip, ep.ip6) if ip],
                "aliases": [n for n in dict.fromkeys([*ep.aliases, a.container_id[:12], a.hostname or ""])
                            if n and n != a.container_name],
                **({"static_mac": mac} if (mac := ep.static_mac or mac_of(ep.ip) or ep.mac) else {}),
            }
            info[_stack_name(net)] = {
                "name": _stack_name(net), "id": net.id, "driver": "bridge", "network_interface": net.interface,
                "subnets": [{"subnet": subnet, "gateway": gateway}
                            for subnet, gateway in ((net.subnet, net.gateway), (net.subnet6, net.gateway6)) if subnet],
                "ipv6_enabled": net.ipv6, "internal": net.internal, "dns_enabled": net.dns,
                "ipam_options": {"driver": "host-local"},
                "options": driver_options.netavark(net.options),
            }
        mappings = [{"host_ip": p.host_ip, "container_port": p.container_port, "host_port": p.host_port,
                     "range": p.count, "protocol": p.protocol} for p in a.ports]
        return {"container_id": a.container_id, "container_name": a.container_name, "networks": networks,
                "network_info": info, "port_mappings": mappings or None}

    async def _run(self, command: str, a: Attachment) -> bytes:
        why = self.missing()
        if why:
            raise Unavailable(f"networking is unavailable: {why}")
        assert self._netavark is not None and self._aardvark is not None
        self._config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        async with self._lock:
            proc = await asyncio.create_subprocess_exec(
                self._netavark, "--config", str(self._config_dir), "--aardvark-binary", self._aardvark,
                command, a.netns, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate(json.dumps(self._options(a)).encode())
        if proc.returncode != 0:
            raise Internal(f"netavark {command} failed: {_error(err or out)}")
        return out

    async def setup(self, a: Attachment) -> dict[str, Interface]:
        out = json.loads(await self._run("setup", a) or b"{}")
        by_name = {_stack_name(net): net.id for net, _ in a.endpoints}
        result = {}
        for name, status in out.items():
            for ifname, iface in (status.get("interfaces") or {}).items():
                subnet = (iface.get("subnets") or [{}])[0]
                result[by_name[name]] = Interface(ifname, iface.get("mac_address", ""), subnet.get("ipnet", ""),
                                                  subnet.get("gateway", ""))
        for net, _ in a.endpoints:
            await bridge_anchor.hold(net)
        await asyncio.to_thread(_hairpin, [net.interface for net, _ in a.endpoints if net.interface])
        await self._internal.allow([net for net, _ in a.endpoints])
        log.debug("setup container=%s networks=%s", a.container_id[:12], ",".join(by_name))
        return result

    async def teardown(self, a: Attachment) -> None:
        if not a.endpoints:
            return
        try:
            await self._run("teardown", a)
        except Internal as e:
            # Teardown goes on past parts already gone (a namespace removed by hand, rules flushed).
            log.warning("teardown container=%s: %s", a.container_id[:12], e.message)
        await self._internal.forget_removed([net for net, _ in a.endpoints])

    async def rename(self, container_id: str, old: str, new: str) -> None:
        async with self._lock:
            if await asyncio.to_thread(_rename_in_dns, self._config_dir / "aardvark-dns", container_id, old, new):
                _reload_dns(self._config_dir / "aardvark-dns" / "aardvark.pid")

    def kept(self, net: Network) -> bool:
        return bridge_anchor.held(net)

    async def let_go(self, net: Network) -> None:
        await bridge_anchor.release(net)


def _error(raw: bytes) -> str:
    text = raw.decode(errors="replace").strip()
    try:
        return str(json.loads(text).get("error", text))
    except (ValueError, AttributeError):
        return text


def _stack_name(net: Network) -> str:
    """The network's name for netavark, which names its iptables chains and DNS files after it: Docker's name
    alone would make every engine's `bridge` share chains with the others' on the same host, and one
    engine's teardown would remove rules another's containers use."""
    return f"{net.name}-{net.id[:12]}"


def _hairpin(bridges: list[str]) -> None:
    """Hairpin mode on the bridges' ports: a container's packets to a published port of its own, through the
    host's address, come back out of the port they went in by (dockerd's bridge does this too). netavark
    leaves it off; setting it again on ports that have it is harmless."""
    for bridge in bridges:
        try:
            ports = os.listdir(f"/sys/class/net/{bridge}/brif")
        except OSError:
            continue
        for port in ports:
            try:
                with open(f"/sys/class/net/{bridge}/brif/{port}/hairpin_mode", "w") as f:
                    f.write("1")
            except OSError:
                continue  # a port that went away meanwhile


def mac_of(ip: str | None) -> str | None:
    """dockerd's MAC for an IPv4 address it gives (02:42 and the address's four bytes): tools that work out one
    from the other, or pick containers' interfaces by the 02:42 prefix, find them."""
    if not ip:
        return None
    return "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))


def _rename_in_dns(dns_dir: Path, container_id: str, old: str, new: str) -> bool:
    """Rename the container in aardvark-dns's network files (one line a container: `ID IPv4s IPv6s NAMES`, names
    comma-separated), each rewritten whole; whether any changed."""
    changed = False
    for path in dns_dir.glob("*"):
        if path.name == "aardvark.pid" or not path.is_file():
            continue
        before = path.read_text()
        lines = before.split("\n")
        for i, line in enumerate(lines):
            fields = line.split(" ", 3)
            if len(fields) == 4 and fields[0] == container_id:
                names = [new if n == old else n for n in fields[3].split(",")]
                lines[i] = " ".join([*fields[:3], ",".join(names)])
        text = "\n".join(lines)
        if text != before:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
            changed = True
    return changed


def _reload_dns(pid_file: Path) -> None:
    """aardvark-dns reads its files again on SIGHUP."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
