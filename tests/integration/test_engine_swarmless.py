"""Swarm and plugin routes answer as dockerd does on a node outside any swarm, with no managed plugins."""
from __future__ import annotations

import json

import docker
import pytest

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl

engine, no_leftovers = containers.engine, containers.no_leftovers

NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                 "this node to swarm and try again.")


@pytest.mark.parametrize("method, path", [
    ("GET", "/swarm"), ("GET", "/nodes"), ("GET", "/services"), ("GET", "/tasks"), ("GET", "/secrets"),
    ("GET", "/configs"), ("GET", "/swarm/unlockkey"), ("POST", "/services/create"), ("DELETE", "/nodes/abc"),
])
def test_manager_routes_are_503_with_dockerds_words(engine, method: str, path: str) -> None:
    status, ctype, body = curl(engine, method, f"/v1.41{path}", "{}" if method == "POST" else None)
    assert (status, ctype, json.loads(body)) == (503, "application/json", {"message": NOT_A_MANAGER})


def test_the_cli_outside_a_swarm(engine) -> None:
    left = cli(engine, "swarm", "leave")
    assert left.returncode == 1 and "This node is not part of a swarm" in left.stderr
    nodes = cli(engine, "node", "ls")
    assert nodes.returncode == 1 and "This node is not a swarm manager" in nodes.stderr
    init = cli(engine, "swarm", "init")
    assert init.returncode == 1 and "swarm mode is not supported" in init.stderr
    # A teardown that leaves a swarm it never joined does not stop the flow after it.
    assert cli(engine, "network", "create", "after-leave").returncode == 0
    assert cli(engine, "network", "rm", "after-leave").returncode == 0


def test_plugins_are_an_empty_list(engine) -> None:
    listed = cli(engine, "plugin", "ls", "--format", "{{.Name}}")
    assert (listed.returncode, listed.stdout) == (0, "")
    client = docker.DockerClient(base_url=engine.host)
    try:
        assert client.plugins.list() == []
        with pytest.raises(docker.errors.NotFound):
            client.plugins.get("vieux/sshfs")
    finally:
        client.close()
    status, _, body = curl(engine, "POST", "/v1.41/plugins/vieux%2Fsshfs/set", "[]")
    assert (status, json.loads(body)) == (404, {"message": 'plugin "vieux/sshfs" not found'})
    install = cli(engine, "plugin", "install", "--grant-all-permissions", "vieux/sshfs")
    assert install.returncode != 0 and "managed plugins are not supported" in install.stderr


def test_unknown_paths_are_page_not_found(engine) -> None:
    status, ctype, body = curl(engine, "GET", "/v1.41/no/such/route")
    assert (status, ctype, json.loads(body)) == (404, "application/json", {"message": "page not found"})
