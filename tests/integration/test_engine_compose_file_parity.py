"""What compose files reach that dockerd 20.10 does otherwise than this engine did (docs/compatibility.md,
session 20): a service's MAC address through compose's reconnect, `network_mode: service:x`, ports on an
internal network."""
from __future__ import annotations

import json
import socket

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def test_the_container_wide_mac_survives_a_reconnect_before_the_first_start(engine) -> None:
    ok(engine, "network", "create", "macn")
    try:
        body = {"Image": "busybox", "Cmd": ["cat", "/sys/class/net/eth0/address"], "MacAddress": "02:42:ac:11:00:96",
                "HostConfig": {"NetworkMode": "macn"}}
        status, _, out = curl(engine, "POST", "/v1.41/containers/create?name=macd", json.dumps(body))
        assert status == 201, out
        # What docker-compose 1.29 does before it starts a service: the network again, with the aliases.
        ok(engine, "network", "disconnect", "macn", "macd")
        ok(engine, "network", "connect", "--alias", "svc", "macn", "macd")
        assert ok(engine, "start", "-a", "macd").strip() == "02:42:ac:11:00:96"
    finally:
        cli(engine, "rm", "-f", "macd")
        ok(engine, "network", "rm", "macn")


def test_a_network_joiner_takes_its_donors_hostname_and_needs_it_running(engine) -> None:
    ok(engine, "run", "-d", "--name", "donor", "--hostname", "donorhost", "busybox", "sleep", "60")
    try:
        out = ok(engine, "run", "--rm", "--network", "container:donor", "busybox", "sh", "-c",
                 "hostname; ping -c 1 -W 2 $(hostname) >/dev/null && echo resolved")
        assert out.split() == ["donorhost", "resolved"]
        ok(engine, "create", "--name", "joiner", "--network", "container:donor", "busybox", "true")
        ok(engine, "stop", "-t", "0", "donor")
        out = cli(engine, "start", "joiner")
        assert out.returncode == 1 and "cannot join network of a non running container: " in out.stderr, out.stderr
    finally:
        cli(engine, "rm", "-f", "joiner", "donor")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ports_are_not_published_through_an_internal_network(engine) -> None:
    ok(engine, "network", "create", "--internal", "innx")
    port = _free_port()
    try:
        ok(engine, "run", "-d", "--name", "pa", "--network", "innx", "-p", f"127.0.0.1:{port}:80", "busybox",
           "sleep", "60")
        assert ok(engine, "port", "pa") == ""
        # The host port is nobody's: another container takes it.
        ok(engine, "run", "-d", "--name", "pb", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "60")
        assert ok(engine, "port", "pb").strip() == f"80/tcp -> 127.0.0.1:{port}"
    finally:
        cli(engine, "rm", "-f", "pa", "pb")
        ok(engine, "network", "rm", "innx")
