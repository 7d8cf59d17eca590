"""Pods on a CNI bridge network: reachable by IP and by hostPort, DNS from the kubelet, nothing leaked."""
from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import time

import pytest
from cri_api.v1 import api_pb2 as cri

from tests.fixtures.cri import CRI, POD_BRIDGE, POD_SUBNET

pytestmark = pytest.mark.timeout(600)


def _pod_ip(c: CRI, pod_id: str) -> str:
    return c.runtime.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status.network.ip


def _exec(c: CRI, cid: str, *cmd: str, timeout: int = 20) -> cri.ExecSyncResponse:
    return c.runtime.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=timeout))


def _counts() -> dict[str, int]:
    links = subprocess.run(["ip", "-o", "link", "show", "master", POD_BRIDGE], capture_output=True, text=True).stdout
    rules = 0
    for table in ("filter", "nat"):
        dump = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
        rules += sum(1 for line in dump.splitlines()
                     if line.startswith("-A") and ("10.250.88." in line or "cri-test" in line))
    return {"veths": len(links.splitlines()), "rules": rules}


def _ipam_files(c: CRI) -> list[str]:
    root = os.path.join(c.daemon.base, "ipam", "cri-test")
    return sorted(f for f in os.listdir(root) if f[0].isdigit()) if os.path.isdir(root) else []


def _netns(c: CRI) -> list[str]:
    d = os.path.join(c.daemon.state, "cri", "netns")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_pods_reach_each_other_and_host_ports(cri_pod_network: CRI) -> None:
    c = cri_pod_network
    c.pull("busybox")
    a_id, a = c.run_pod("alpha", host_network=False,
                        dns_config=cri.DNSConfig(servers=["10.96.0.10"], searches=["ns.svc.cluster.local"],
                                                 options=["ndots:5"]))
    b_id, b = c.run_pod("beta", host_network=False,
                        port_mappings=[cri.PortMapping(protocol=cri.TCP, container_port=8080, host_port=38080,
                                                       host_ip="127.0.0.1")])
    a_ip, b_ip = _pod_ip(c, a_id), _pod_ip(c, b_id)
    assert ipaddress.ip_address(a_ip) in ipaddress.ip_network(POD_SUBNET)
    assert ipaddress.ip_address(b_ip) in ipaddress.ip_network(POD_SUBNET) and a_ip != b_ip
    a_ctr = c.start_container(a_id, a, "client", ["sleep", "300"])
    c.start_container(b_id, b, "server", ["sh", "-c", "while true; do echo pong | nc -l -p 8080; done"])

    resolv = _exec(c, a_ctr, "cat", "/etc/resolv.conf").stdout.decode()
    assert "nameserver 10.96.0.10" in resolv and "search ns.svc.cluster.local" in resolv
    assert "options ndots:5" in resolv
    assert _exec(c, a_ctr, "hostname").stdout.decode().strip() == "alpha"
    assert _exec(c, a_ctr, "ping", "-c", "1", "-W", "5", b_ip).exit_code == 0

    deadline = time.monotonic() + 20
    reply = b""
    while time.monotonic() < deadline and b"pong" not in reply:
        out = _exec(c, a_ctr, "sh", "-c", f"echo ping | nc -w 2 {b_ip} 8080")
        reply = out.stdout
    assert b"pong" in reply
    reply = b""
    while time.monotonic() < deadline and b"pong" not in reply:
        try:
            with socket.create_connection(("127.0.0.1", 38080), timeout=3) as s:
                s.sendall(b"ping\n")
                reply = s.recv(64)
        except OSError:
            time.sleep(0.2)
    assert b"pong" in reply


def test_pod_cycles_leave_nothing_behind(cri_pod_network: CRI) -> None:
    c = cri_pod_network
    c.pull("busybox")
    first, _ = c.run_pod("warmup", host_network=False)  # the bridge and base chains exist from here on
    before = _counts()
    before_ipam = _ipam_files(c)
    for i in range(30):
        pod_id, pod = c.run_pod(f"cycle{i}", host_network=False,
                                port_mappings=[cri.PortMapping(container_port=80, host_port=39000 + i)])
        assert _pod_ip(c, pod_id)
        c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert _counts() == before
    assert _ipam_files(c) == before_ipam
    assert _netns(c) == [first]
    c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=first))
    c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=first))
    assert _netns(c) == [] and _ipam_files(c) == []
    assert _counts()["veths"] == 0


def test_network_survives_a_killed_runtime_without_duplicates(cri_pod_network: CRI) -> None:
    c = cri_pod_network
    pod_id, _ = c.run_pod("steady", host_network=False)
    ip = _pod_ip(c, pod_id)
    before = _counts()
    c.daemon.kill9()
    c.daemon.start()
    assert _pod_ip(c, pod_id) == ip
    assert _counts() == before and _ipam_files(c) == [ip]
    c.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    c.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert _ipam_files(c) == [] and _netns(c) == []
