"""A default pod network conflist for tests and docs: bridge + host-local IPAM + portmap (+ firewall).

- bridge: a Linux bridge as the pods' gateway (`isGateway`), NAT for traffic leaving the subnet
  (`ipMasq`) and `hairpinMode` so a pod reaches itself through its own host port. Never together
  with `promiscMode`: the Debian bridge plugin refuses the pair.
- host-local IPAM: addresses from `subnet` (and `ipv6_subnet` for dual-stack pods), leases as files
  under its own `dataDir`.
- portmap: hostPort DNAT for the `portMappings` capability; `snat` masquerades hairpin and
  localhost-originated connections, which is what lets a hostPort on 127.0.0.1 reach a pod (the
  plugin also turns on route_localnet on the bridge for that).
- firewall (optional): per-pod ACCEPT rules in its own CNI-FORWARD chain, so pods keep talking to
  each other and out when something else (Docker's daemon, for one) sets the FORWARD policy to DROP.
`lo` is not in the list: the runtime runs the loopback plugin on it separately, as containerd does.
"""
from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from runtime.cri.cni.config import check_ifname, check_name, conflist_from_dict


def default_conflist(name: str, bridge: str, subnet: str, data_dir: str, *, ipv6_subnet: str | None = None,
                     firewall: bool = True, cni_version: str = "1.0.0") -> dict[str, Any]:
    """`subnet` (v4 or v6), and `ipv6_subnet` as a second range for dual-stack pods."""
    check_name("network name", name)
    check_ifname(bridge)
    nets = [ipaddress.ip_network(subnet)]
    if ipv6_subnet is not None:
        nets.append(ipaddress.ip_network(ipv6_subnet))
        if nets[1].version != 6 or nets[0].version != 4:
            raise ValueError("a dual-stack network is an IPv4 subnet and an IPv6 ipv6_subnet")
    plugins: list[dict[str, Any]] = [
        {
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "ipMasq": True,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": str(net)}] for net in nets],
                "routes": [{"dst": "0.0.0.0/0" if net.version == 4 else "::/0"} for net in nets],
                "dataDir": data_dir,
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
    ]
    if firewall:
        plugins.append({"type": "firewall"})
    doc = {"cniVersion": cni_version, "name": name, "plugins": plugins}
    conflist_from_dict(doc)  # the helper never writes what the loader would refuse
    return doc


def write_default_conflist(conf_dir: str, name: str, bridge: str, subnet: str, data_dir: str, *,
                           ipv6_subnet: str | None = None, filename: str = "10-pyengine.conflist",
                           firewall: bool = True, cni_version: str = "1.0.0") -> Path:
    doc = default_conflist(name, bridge, subnet, data_dir, ipv6_subnet=ipv6_subnet, firewall=firewall,
                           cni_version=cni_version)
    root = Path(conf_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / filename
    tmp = root / f".{filename}.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    return path
