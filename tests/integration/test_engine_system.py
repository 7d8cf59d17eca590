"""Issue 4: the engine daemon answers the real docker CLI and SDK (system endpoints)."""
from __future__ import annotations

import json
import os
import subprocess

import docker
import pytest


def test_docker_version_and_info(engine):
    v = subprocess.run(["docker", "version", "--format", "{{json .}}"], env=engine.env(), capture_output=True,
                       text=True)
    assert v.returncode == 0, v.stderr
    doc = json.loads(v.stdout)
    assert doc["Server"]["ApiVersion"] == "1.50"
    assert doc["Client"]["ApiVersion"] == "1.50"  # the CLI's own: no downgrade
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}} {{.OSType}}"], env=engine.env(),
                          capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert info.stdout.split() == ["0.1.0", "linux"]
    assert os.stat(engine.address).st_mode & 0o777 == 0o660


def test_sdk_ping_version_and_prefixes(engine):
    client = docker.DockerClient(base_url=engine.host)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.50"
        api = client.api
        too_new = api._get(api.base_url + "/v1.99/version")
        assert too_new.status_code == 400
        assert too_new.headers["Content-Type"] == "application/json"
        assert "too new" in too_new.json()["message"]
        unknown = api._get(api.base_url + "/v1.41/nope")
        assert unknown.status_code == 404 and unknown.json() == {"message": "page not found"}
        head = api.head(api.base_url + "/_ping")
        assert head.status_code == 200 and head.headers["Api-Version"] == "1.50"
    finally:
        client.close()


def test_both_daemons_show_in_ps(engine):
    ps = subprocess.run(["ps", "auxww"], capture_output=True, text=True).stdout
    assert "pyengined" in ps
    assert "pyruntimed" in ps


def test_runtime_down_gives_clear_error_then_recovers(engine):
    engine.runtime.stop()
    out = subprocess.run(["docker", "info"], env=engine.env(), capture_output=True, text=True)
    assert out.returncode != 0
    assert "cannot reach pyruntimed" in out.stdout + out.stderr
    engine.runtime.start()
    again = subprocess.run(["docker", "info"], env=engine.env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("path", ["/_ping", "/v1.41/_ping", "/v1.24/version"])
def test_routes_with_and_without_prefix(engine, path):
    out = subprocess.run(["curl", "-fsS", "--unix-socket", engine.address, f"http://x{path}"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr


def test_info_tells_the_truth(engine):
    client = docker.DockerClient(base_url=engine.host)
    try:
        info = client.info()
        # A daemon ID of its own, kept across restarts.
        assert info["ID"] and info["ID"] != "pyengine"
        assert (info["Containers"], info["ContainersRunning"], info["Images"]) == (0, 0, 0)
        assert info["NGoroutines"] > 0
        listening = client.events(decode=True)
        try:
            assert client.info()["NEventsListener"] == 1
        finally:
            listening.close()
        forwarding = open("/proc/sys/net/ipv4/ip_forward").read().strip() == "1"
        assert info["IPv4Forwarding"] is forwarding
        assert info["CgroupVersion"] == ("2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1")
        engine.restart()
        assert client.info()["ID"] == info["ID"]
    finally:
        client.close()
