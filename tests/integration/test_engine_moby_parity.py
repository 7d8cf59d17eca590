"""Expectations of moby's own integration tests that pyengined met otherwise than dockerd 20.10, each shown met
as there (docs/compatibility.md, session 16)."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import docker

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(self._path)


def _post(engine, path: str, body: dict | None = None) -> tuple[int, bytes]:
    """A plain HTTP client: no `Upgrade` header, as Python's http.client or `requests` send."""
    conn = _Unix(engine.address)
    conn.request("POST", path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_kill_of_a_paused_container(engine) -> None:
    ok(engine, "run", "-d", "--name", "kp", "--network", "none", "busybox", "sleep", "60")
    ok(engine, "pause", "kp")
    assert ok(engine, "kill", "kp").strip() == "kp"
    assert ok(engine, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "kp").split() == ["exited", "137"]
    # Another signal thaws it to act on the signal, as dockerd does.
    ok(engine, "run", "-d", "--name", "kp2", "--network", "none", "busybox", "sh", "-c",
       "trap 'echo got; exit 3' TERM; while :; do sleep 0.1; done")
    time.sleep(0.5)
    ok(engine, "pause", "kp2")
    t0 = time.time()
    ok(engine, "kill", "-s", "TERM", "kp2")
    assert ok(engine, "wait", "kp2").strip() == "3"
    # dockerd 20.10's order: the signal goes to the frozen process, then it is thawed; a stop does the same.
    ok(engine, "start", "kp2")
    time.sleep(0.5)
    ok(engine, "pause", "kp2")
    ok(engine, "stop", "kp2")
    actions = ok(engine, "events", "--since", str(t0), "--until", str(time.time()), "--filter", "container=kp2",
                 "--format", "{{.Action}}").split()
    assert actions == ["kill", "unpause", "die", "start", "pause", "kill", "unpause", "die", "stop"]
    ok(engine, "rm", "kp", "kp2")


def test_a_missing_container_to_share_with_is_no_missing_image(engine) -> None:
    for flags in (["--volumes-from", "nosuchctr"], ["--network", "container:nosuchctr"]):
        out = cli(engine, "create", *flags, "busybox", "true")
        assert out.returncode != 0 and "No such container: nosuchctr" in out.stderr, out.stderr
        assert "Unable to find image" not in out.stderr


def test_streams_to_a_client_that_did_not_ask_to_upgrade(engine) -> None:
    ok(engine, "run", "--name", "said", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2")
    status, body = _post(engine, "/v1.41/containers/said/attach?logs=1&stdout=1&stderr=1")
    assert status == 200 and body == b"\x01\0\0\0\0\0\0\x04out\n\x02\0\0\0\0\0\0\x04err\n"
    ok(engine, "run", "-d", "--name", "execd", "--network", "none", "busybox", "sleep", "60")
    status, created = _post(engine, "/v1.41/containers/execd/exec", {"Cmd": ["echo", "hi"], "AttachStdout": True})
    status, body = _post(engine, f"/v1.41/exec/{json.loads(created)['Id']}/start", {"Detach": False})
    assert status == 200 and body == b"\x01\0\0\0\0\0\0\x03hi\n"
    ok(engine, "rm", "-f", "said", "execd")


def test_a_stats_stream_ends_when_its_container_goes(engine) -> None:
    api = docker.APIClient(base_url=engine.host)
    c = api.create_container("busybox", ["sleep", "60"], host_config=api.create_host_config(network_mode="none"))
    api.start(c)
    samples = api.stats(c, decode=True)
    next(samples)
    threading.Timer(1.0, lambda: api.remove_container(c, force=True)).start()
    assert all("read" in s for s in samples)  # ends without a broken chunk


def test_a_stats_stream_goes_on_while_its_container_does_not_run(engine) -> None:
    """dockerd: an empty sample a second while the container does not run, its numbers once it is started."""
    api = docker.APIClient(base_url=engine.host)
    c = api.create_container("busybox", ["sleep", "60"], host_config=api.create_host_config(network_mode="none"))
    samples = api.stats(c, decode=True)
    assert [next(samples)["pids_stats"].get("current", 0) for _ in range(2)] == [0, 0]
    api.start(c)
    assert any(next(samples)["pids_stats"].get("current", 0) >= 1 for _ in range(4))
    threading.Timer(0.5, lambda: api.remove_container(c, force=True)).start()
    assert all("read" in s for s in samples)


def test_inspect_has_gos_zero_values_for_fields_a_client_left_out(engine) -> None:
    status, _, out = curl(engine, "POST", "/v1.41/containers/create?name=zeros",
                          json.dumps({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}))
    assert status == 201, out
    hc = json.loads(ok(engine, "inspect", "zeros"))[0]["HostConfig"]
    for key, zero in {"CpuQuota": 0, "CpuPeriod": 0, "OomScoreAdj": 0, "MemoryReservation": 0, "PidMode": "",
                      "UTSMode": "", "UsernsMode": "", "CgroupParent": "", "CpusetCpus": "", "Isolation": "",
                      "BlkioWeight": 0, "OomKillDisable": False, "ConsoleSize": [0, 0], "ContainerIDFile": "",
                      "VolumeDriver": "", "CpuCount": 0, "CpuRealtimeRuntime": 0}.items():
        assert hc[key] == zero, (key, hc.get(key))
    assert hc["PidsLimit"] is None and hc["MemorySwappiness"] is None and "Init" not in hc
    ok(engine, "rm", "zeros")


def test_what_create_takes_and_refuses_as_dockerd(engine) -> None:
    status, _, out = curl(engine, "POST", "/v1.41/containers/create?name=strcaps",
                          json.dumps({"Image": "busybox", "Cmd": ["true"],
                                      "HostConfig": {"CapAdd": "NET_ADMIN", "CapDrop": "MKNOD"}}))
    assert status == 201, out
    hc = json.loads(ok(engine, "inspect", "strcaps"))[0]["HostConfig"]
    assert (hc["CapAdd"], hc["CapDrop"]) == (["NET_ADMIN"], ["MKNOD"])
    ok(engine, "rm", "strcaps")
    status, _, out = curl(engine, "POST", "/v1.41/containers/create", "{}")
    assert (status, json.loads(out)["message"]) == (400, "Config cannot be empty in order to create a container")
    status, _, out = curl(engine, "POST", "/v1.41/containers/create", json.dumps(
        {"Image": "busybox", "HostConfig": {"PortBindings": {"8080/tcp": [{"HostPort": "aa80"}]}}}))
    assert (status, json.loads(out)["message"]) == (400, 'invalid port specification: "aa80"')


def test_running_containers_without_an_endpoint_list_no_ports(engine) -> None:
    ok(engine, "run", "-d", "--name", "noports", "--network", "none", "--expose", "8080", "busybox", "sleep", "60")
    assert ok(engine, "ps", "--format", "{{.Ports}}", "--filter", "name=noports").strip() == ""
    ok(engine, "rm", "-f", "noports")


def test_removing_a_network_in_use_is_forbidden(engine) -> None:
    ok(engine, "network", "create", "busy")
    ok(engine, "run", "-d", "--name", "user", "--network", "busy", "busybox", "sleep", "60")
    status, _, out = curl(engine, "DELETE", "/v1.41/networks/busy")
    assert status == 403 and "has active endpoints" in json.loads(out)["message"]
    ok(engine, "rm", "-f", "user")
    ok(engine, "network", "rm", "busy")


def test_a_probe_that_cannot_start_says_so_in_dockerds_words(engine) -> None:
    # The probe's program runs directly (CMD, not CMD-SHELL's /bin/sh): runc refuses it.
    status, _, out = curl(engine, "POST", "/v1.41/containers/create?name=noprobe2", json.dumps(
        {"Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": "none"},
         "Healthcheck": {"Test": ["CMD", "nosuchprog"], "Interval": 1_000_000_000}}))
    assert status == 201, out
    ok(engine, "start", "noprobe2")
    log: list = []
    deadline = time.monotonic() + 20
    while not log and time.monotonic() < deadline:
        time.sleep(0.5)
        log = json.loads(ok(engine, "inspect", "--format", "{{json .State.Health.Log}}", "noprobe2")) or []
    assert log and log[0]["Output"].startswith("OCI runtime exec failed: ") and log[0]["Output"].endswith(": unknown")
    assert log[0]["ExitCode"] == -1
    ok(engine, "rm", "-f", "noprobe2")
