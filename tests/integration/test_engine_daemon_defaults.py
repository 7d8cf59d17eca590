"""dockerd's defaults from daemon.json and flags: containers' resolvers, the default bridge's binding address and MTU,
the networks' address pools, the IPC and cgroup namespace modes, debug, live restore."""
from __future__ import annotations

import grp
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon, RuntimeDaemon, mirrored_engine
from tests.integration.test_engine_containers import ok


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    config = tmp_path_factory.mktemp("config") / "daemon.json"
    config.write_text(json.dumps({
        "dns": ["10.11.12.13"], "dns-search": ["example.test"], "dns-opts": ["timeout:3"], "ip": "127.0.0.1",
        "default-ipc-mode": "shareable", "debug": True, "live-restore": True, "mtu": 1400, "userland-proxy": False,
        "iptables": True, "icc": True,
        "default-address-pools": [{"base": "10.123.0.0/16", "size": 24}]}))
    pidfile = config.parent / "run" / "pyengined.pid"
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host,
                         extra_args=["--config-file", str(config), "--default-cgroupns-mode", "private",
                                     "--pidfile", str(pidfile), "-G", "daemon"]) as e:
        assert e.proc is not None and pidfile.read_text() == f"{e.proc.pid}\n"
        yield e
    assert not pidfile.exists()  # gone with the daemon, as dockerd's


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def resolv(engine: EngineDaemon, *args: str) -> list[str]:
    return ok(engine, "run", "--rm", *args, "busybox", "cat", "/etc/resolv.conf").splitlines()


def test_daemon_resolvers_fill_in_what_a_container_does_not_set(engine: EngineDaemon) -> None:
    assert resolv(engine, "--network", "none") == ["search example.test", "nameserver 10.11.12.13", "options timeout:3"]
    # Each kind on its own, as dockerd: the container's --dns wins, the daemon's search and options stay.
    assert resolv(engine, "--network", "none", "--dns", "10.0.0.9") == [
        "search example.test", "nameserver 10.0.0.9", "options timeout:3"]
    assert "nameserver 10.11.12.13" in resolv(engine, "--network", "host")
    # On the default bridge (no embedded DNS) too.
    assert "nameserver 10.11.12.13" in resolv(engine)


def test_default_bridge_publishes_on_the_daemons_ip(engine: EngineDaemon) -> None:
    assert ok(engine, "network", "inspect", "-f",
              '{{index .Options "com.docker.network.bridge.host_binding_ipv4"}}', "bridge") == "127.0.0.1\n"
    ok(engine, "run", "-d", "--name", "web", "-p", "80", "-p", "0.0.0.0::81", "busybox", "sleep", "60")
    ports = json.loads(ok(engine, "inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"))
    assert [b["HostIp"] for b in ports["80/tcp"]] == ["127.0.0.1"]
    assert [b["HostIp"] for b in ports["81/tcp"]] == ["0.0.0.0"]  # an address of the binding's own wins


def test_networks_take_subnets_from_the_daemons_pools_and_the_bridge_its_mtu(engine: EngineDaemon) -> None:
    assert ok(engine, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge") == "10.123.0.0/24\n"
    ok(engine, "network", "create", "pooled")
    try:
        assert ok(engine, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "pooled") == \
            "10.123.1.0/24\n"
    finally:
        ok(engine, "network", "rm", "pooled")
    assert ok(engine, "network", "inspect", "-f", '{{index .Options "com.docker.network.driver.mtu"}}', "bridge") == \
        "1400\n"
    assert ok(engine, "run", "--rm", "busybox", "cat", "/sys/class/net/eth0/mtu") == "1400\n"


def test_namespace_modes_and_debug(engine: EngineDaemon) -> None:
    ok(engine, "create", "--name", "plain", "busybox")
    assert ok(engine, "inspect", "-f", "{{.HostConfig.IpcMode}} {{.HostConfig.CgroupnsMode}}", "plain") == \
        "shareable private\n"
    ok(engine, "create", "--name", "own", "--ipc", "private", "--cgroupns", "host", "busybox")
    assert ok(engine, "inspect", "-f", "{{.HostConfig.IpcMode}} {{.HostConfig.CgroupnsMode}}", "own") == \
        "private host\n"
    # A container in a cgroup namespace of its own sees its cgroup as the root.
    assert ok(engine, "run", "--rm", "--network", "none", "busybox", "sh", "-c",
              "grep -c ':/$' /proc/self/cgroup") != "0\n"
    # A shareable IPC namespace another container can join, the daemon's default here.
    ok(engine, "run", "-d", "--name", "donor", "--network", "none", "busybox", "sleep", "60")
    ok(engine, "run", "--rm", "--network", "none", "--ipc", "container:donor", "busybox", "true")
    assert ok(engine, "info", "-f", "{{.Debug}}") == "true\n"
    assert os.stat(engine.address).st_gid == grp.getgrnam("daemon").gr_gid  # -G, dockerd's short flag


def _refused(runtime: RuntimeDaemon, config: Path, body: dict[str, object], *flags: str) -> str:
    config.write_text(json.dumps(body))
    e = EngineDaemon(runtime, extra_args=["--config-file", str(config), *flags])
    out = subprocess.run(e.command(), capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out
    return out.stderr


def test_bad_defaults_are_refused_in_dockerds_words(runtime_daemon: RuntimeDaemon, tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    assert "IP address is not correctly formatted: one.one" in _refused(runtime_daemon, config, {"dns": ["one.one"]})
    assert 'IPC mode "host" is not supported as default value' in _refused(
        runtime_daemon, config, {"default-ipc-mode": "host"})
    assert "live-restore: false is not supported" in _refused(runtime_daemon, config, {"live-restore": False})
    assert "ip: ::1 is not an IPv4 address" in _refused(runtime_daemon, config, {"ip": "::1"})
    # A pid file naming a live process (this one) stops the start, as dockerd's.
    (tmp_path / "pid").write_text(f"{os.getpid()}\n")
    assert f"pid file found, ensure pyengined is not running or delete {tmp_path / 'pid'}" in _refused(
        runtime_daemon, config, {}, "--pidfile", str(tmp_path / "pid"))
    assert "invalid pools size: 8" in _refused(runtime_daemon, config, {
        "default-address-pools": [{"base": "10.0.0.0/16", "size": 8}]})
