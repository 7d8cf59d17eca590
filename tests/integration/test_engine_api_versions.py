"""API versions 1.12 to 1.50: no downgrade for the CLI 28, SDKs pinned to newer versions, and each answer in the
shape of the version asked, as the Engine API's version history describes it."""
from __future__ import annotations

import json
import subprocess
from urllib.parse import quote

import docker

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import curl, ok
from tests.integration.test_engine_health import until

engine, no_leftovers = containers.engine, containers.no_leftovers


def get(engine, path: str) -> dict:
    status, _, body = curl(engine, "GET", path)
    assert status == 200, body
    return json.loads(body)


def test_docker_cli_speaks_the_newest_version(engine) -> None:
    out = ok(engine, "version")
    assert "downgraded" not in out and "1.50 (minimum version 1.12)" in out
    doc = json.loads(ok(engine, "version", "--format", "{{json .}}"))
    assert (doc["Client"]["ApiVersion"], doc["Server"]["ApiVersion"], doc["Server"]["MinAPIVersion"]) == \
        ("1.50", "1.50", "1.12")
    status, _, body = curl(engine, "GET", "/v1.11/version")
    assert status == 400 and "Minimum supported API version is 1.12" in json.loads(body)["message"]
    status, _, body = curl(engine, "GET", "/v1.51/version")
    assert status == 400 and "Maximum supported API version is 1.50" in json.loads(body)["message"]


def test_ping_tells_swarm_state_and_version(engine) -> None:
    out = subprocess.run(["curl", "-sS", "-I", "--unix-socket", engine.address, "http://x/_ping"],
                         capture_output=True, text=True, timeout=30, check=True).stdout.lower()
    assert "api-version: 1.50" in out and "swarm: inactive" in out


def test_sdk_pinned_to_1_45_and_1_50(engine) -> None:
    ok(engine, "network", "create", "vnet")
    for version in ("1.45", "1.50"):
        client = docker.DockerClient(base_url=engine.host, version=version)
        try:
            name = f"pinned{version.replace('.', '')}"
            c = client.containers.create("busybox", ["sleep", "100"], name=name, network="vnet",
                                         hostname="h" + name)
            c.start()
            c.reload()
            ep = c.attrs["NetworkSettings"]["Networks"]["vnet"]
            assert ep["Aliases"] is None
            assert ep["DNSNames"] == [name, c.id[:12], "h" + name]
            volume = client.volumes.create(f"vol{name}")
            assert client.volumes.get(volume.name).name == volume.name
            net = client.networks.get("vnet")
            net.reload()
            assert c.id in net.attrs["Containers"]
            volume.remove()
        finally:
            client.close()
    out = ok(engine, "exec", "pinned150", "nslookup", "hpinned145")
    assert "Name:" in out


def test_aliases_and_dns_names_by_version(engine) -> None:
    ok(engine, "network", "create", "anet")
    cid = ok(engine, "run", "-d", "--name", "aliased", "--network", "anet", "--network-alias", "www",
             "busybox", "sleep", "100").strip()
    short = cid[:12]

    def endpoint(version: str) -> dict:
        return get(engine, f"/v{version}/containers/aliased/json")["NetworkSettings"]["Networks"]["anet"]

    assert endpoint("1.50")["Aliases"] == ["www"]
    assert endpoint("1.50")["DNSNames"] == ["aliased", "www", short]
    assert endpoint("1.50")["GwPriority"] == 0
    assert endpoint("1.44")["Aliases"] == ["www", short] and endpoint("1.44")["DNSNames"] == ["aliased", "www", short]
    assert "DNSNames" not in endpoint("1.43") and endpoint("1.43")["Aliases"] == ["www", short]
    assert "GwPriority" not in endpoint("1.47")
    # A hostname of its own joined them too (dockerd 20.10 listed it after the short ID).
    ok(engine, "run", "-d", "--name", "named", "--network", "anet", "--hostname", "myhost", "busybox", "sleep", "100")
    named = get(engine, "/v1.41/containers/named/json")
    assert named["NetworkSettings"]["Networks"]["anet"]["Aliases"] == [named["Id"][:12], "myhost"]
    ok(engine, "rm", "-f", "named")
    listed = [c for c in get(engine, "/v1.44/containers/json") if c["Id"] == cid][0]
    assert listed["NetworkSettings"]["Networks"]["anet"]["Aliases"] == ["www", short]
    # The default bridge has no names to resolve: no aliases at any version.
    ok(engine, "run", "-d", "--name", "plain", "busybox", "sleep", "100")
    bridge = get(engine, "/v1.44/containers/plain/json")["NetworkSettings"]["Networks"]["bridge"]
    assert bridge["Aliases"] is None and bridge["DNSNames"] is None


def test_image_shapes_by_version(engine) -> None:
    new = get(engine, "/v1.50/images/busybox/json")
    assert "VirtualSize" not in new and "ContainerConfig" not in new and "Container" not in new
    assert "Hostname" not in new["Config"] and new["Config"]["Cmd"] == ["sh"]
    assert get(engine, "/v1.49/images/busybox/json")["Config"]["Hostname"] == ""
    v145 = get(engine, "/v1.45/images/busybox/json")
    assert "ContainerConfig" not in v145 and "VirtualSize" not in v145
    old = get(engine, "/v1.43/images/busybox/json")
    assert old["VirtualSize"] == old["Size"] and old["Container"] == "" and "Cmd" in old["ContainerConfig"]
    listed = get(engine, "/v1.43/images/json")
    assert all(i["VirtualSize"] == i["Size"] for i in listed)
    assert all("VirtualSize" not in i for i in get(engine, "/v1.44/images/json"))
    df = get(engine, "/v1.43/system/df")
    assert all(i["VirtualSize"] == i["Size"] for i in df["Images"])


def test_untagged_image_placeholders_before_1_43(engine) -> None:
    ok(engine, "tag", "busybox", "keepme:1")
    image_id = ok(engine, "image", "inspect", "--format", "{{.Id}}", "busybox").strip()
    # Every name goes; a running container that uses the image keeps it.
    ok(engine, "run", "-d", "--name", "holder", image_id, "sleep", "60")
    ok(engine, "rmi", "keepme:1")
    ok(engine, "rmi", "-f", "busybox")
    try:
        def entry(version: str) -> dict:
            return [i for i in get(engine, f"/v{version}/images/json") if i["Id"] == image_id][0]
        assert (entry("1.42")["RepoTags"], entry("1.42")["RepoDigests"]) == (["<none>:<none>"], ["<none>@<none>"])
        assert (entry("1.43")["RepoTags"], entry("1.43")["RepoDigests"]) == ([], [])
    finally:
        ok(engine, "rm", "-f", "holder")
        ok(engine, "pull", "busybox")


def test_volume_prune_by_version(engine) -> None:
    def prune(version: str, query: str = "") -> list[str]:
        status, _, body = curl(engine, "POST", f"/v{version}/volumes/prune{query}")
        assert status == 200, body
        return json.loads(body)["VolumesDeleted"] or []

    ok(engine, "volume", "create", "named1")
    anon = ok(engine, "create", "-v", "/data", "busybox", "true").strip()
    anon_volume = json.loads(ok(engine, "inspect", anon))[0]["Mounts"][0]["Name"]
    ok(engine, "rm", anon)
    assert prune("1.42") == [anon_volume]
    assert "named1" in ok(engine, "volume", "ls", "-q").split()
    assert prune("1.41") == ["named1"]
    ok(engine, "volume", "create", "named2")
    assert prune("1.50", "?filters=" + quote(json.dumps({"all": ["true"]}))) == ["named2"]
    status, _, body = curl(engine, "POST", "/v1.50/volumes/prune?filters=" + quote(json.dumps({"all": ["maybe"]})))
    assert status == 400 and "invalid filter 'all=maybe'" in json.loads(body)["message"]
    # The CLI 28 speaks 1.50: plain prune keeps named volumes, --all removes them.
    ok(engine, "volume", "create", "named3")
    assert "named3" not in ok(engine, "volume", "prune", "-f")
    assert "named3" in ok(engine, "volume", "prune", "-af")


def test_info_fields_by_version(engine) -> None:
    new = get(engine, "/v1.50/info")
    assert new["Containerd"]["Namespaces"]["Containers"] and new["Containerd"]["Address"].endswith(".sock")
    assert new["FirewallBackend"]["Driver"] == "iptables" and new["DiscoveredDevices"] == []
    assert "DiscoveredDevices" not in get(engine, "/v1.49/info")
    assert "FirewallBackend" not in get(engine, "/v1.48/info")
    assert "Containerd" not in get(engine, "/v1.45/info")
    old = get(engine, "/v1.24/info")
    assert old["ExecutionDriver"] == "<not supported>"
    assert all("=" not in opt for opt in old["SecurityOptions"])
    assert "ExecutionDriver" not in get(engine, "/v1.25/info")


def test_clients_at_1_12_and_1_19(engine) -> None:
    for version in ("1.12", "1.19"):
        info = get(engine, f"/v{version}/info")
        assert info["ServerVersion"] and info["ExecutionDriver"] == "<not supported>"
        status, _, body = curl(engine, "POST", f"/v{version}/containers/create?name=old{version[2:]}",
                               json.dumps({"Image": "busybox", "Cmd": ["sleep", "100"], "Volumes": {"/data": {}}}))
        assert status == 201, body
        cid = json.loads(body)["Id"]
        status, _, body = curl(engine, "POST", f"/v{version}/containers/{cid}/start")
        assert status == 204, body
        status, _, body = curl(engine, "POST", f"/v{version}/containers/{cid}/kill")
        assert status == 204, body
        doc = get(engine, f"/v{version}/containers/{cid}/json")
        assert doc["Id"] == cid and doc["State"]["Running"] is False
        assert "Mounts" not in doc and list(doc["Volumes"]) == ["/data"] and doc["VolumesRW"] == {"/data": True}
        assert doc["Config"]["Memory"] == 0 and doc["Config"]["Cpuset"] == ""
    assert "Mounts" in get(engine, "/v1.20/containers/old12/json")


def test_start_with_a_body(engine) -> None:
    ok(engine, "create", "--name", "bodied", "busybox", "sleep", "100")
    status, _, body = curl(engine, "POST", "/v1.24/containers/bodied/start", json.dumps({"Binds": ["/tmp:/t"]}))
    assert (status, json.loads(body)["message"]) == (
        400, "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
    status, _, body = curl(engine, "POST", "/v1.19/containers/bodied/start", json.dumps({"Binds": ["/tmp:/t"]}))
    assert status == 400 and "HostConfig" in json.loads(body)["message"]
    status, _, body = curl(engine, "POST", "/v1.50/containers/bodied/start", "{}")
    assert status == 204, body


def test_update_before_1_40_has_no_pids_limit(engine) -> None:
    ok(engine, "run", "-d", "--name", "upd", "--pids-limit", "50", "busybox", "sleep", "100")
    status, _, body = curl(engine, "POST", "/v1.39/containers/upd/update", json.dumps({"PidsLimit": 20}))
    assert status == 200, body
    assert get(engine, "/v1.50/containers/upd/json")["HostConfig"]["PidsLimit"] == 50
    status, _, body = curl(engine, "POST", "/v1.40/containers/upd/update", json.dumps({"PidsLimit": 20}))
    assert status == 200, body
    assert get(engine, "/v1.50/containers/upd/json")["HostConfig"]["PidsLimit"] == 20


def test_create_wait_and_inspect_before_1_25_1_30_1_40_and_1_42(engine) -> None:
    # Clients before 1.40 get a shareable IPC namespace by default (others may join it); before 1.25 they
    # remove their containers themselves; before 1.30 wait takes no condition; before 1.42 HostConfig had
    # KernelMemory.
    create = json.dumps({"Image": "busybox", "Cmd": ["sleep", "100"], "HostConfig": {"AutoRemove": True}})
    status, _, body = curl(engine, "POST", "/v1.24/containers/create?name=old", create)
    assert status == 201, body
    old = get(engine, "/v1.24/containers/old/json")
    assert (old["HostConfig"]["IpcMode"], old["HostConfig"]["AutoRemove"], old["HostConfig"]["KernelMemory"]) == \
        ("shareable", False, 0)
    assert "KernelMemory" not in get(engine, "/v1.50/containers/old/json")["HostConfig"]
    ok(engine, "start", "old")
    ok(engine, "run", "--rm", "--ipc", "container:old", "busybox", "true")
    ok(engine, "stop", "-t", "0", "old")
    status, _, body = curl(engine, "POST", "/v1.29/containers/old/wait?condition=next-exit")
    assert (status, json.loads(body)["StatusCode"]) == (200, 137)
    ok(engine, "rm", "old")
    # A start body of 7 bytes is no HostConfig yet, for dockerd.
    ok(engine, "create", "--name", "seven", "busybox", "true")
    status, _, body = curl(engine, "POST", "/v1.50/containers/seven/start", '{"a":1}')
    assert status == 204, body
    ok(engine, "rm", "seven")


def test_create_fields_newer_than_the_client_are_dropped_or_refused(engine) -> None:
    # Before 1.44 a create names one network (the others are connected after), has no endpoint MAC address
    # and no StartInterval; before 1.43 no Annotations: what an older client sends there is no promise.
    ok(engine, "network", "create", "vn1")
    ok(engine, "network", "create", "vn2")
    two = {"Image": "busybox", "HostConfig": {"NetworkMode": "vn1"},
           "NetworkingConfig": {"EndpointsConfig": {"vn1": {}, "vn2": {}}}}
    status, _, body = curl(engine, "POST", "/v1.43/containers/create", json.dumps(two))
    assert (status, json.loads(body)["message"]) == \
        (400, "Container cannot be connected to network endpoints: vn1, vn2")
    status, _, body = curl(engine, "POST", "/v1.44/containers/create?name=two", json.dumps(two))
    assert status == 201, body
    newer = {"Image": "busybox", "Cmd": ["sleep", "100"], "Healthcheck": {"Test": ["CMD", "true"],
                                                                          "StartInterval": 2_000_000_000},
             "HostConfig": {"NetworkMode": "vn1", "Annotations": {"a": "b"}},
             "NetworkingConfig": {"EndpointsConfig": {"vn1": {"MacAddress": "02:42:ac:11:00:57"}}}}
    status, _, body = curl(engine, "POST", "/v1.42/containers/create?name=older", json.dumps(newer))
    assert status == 201, body
    ok(engine, "start", "older")
    doc = get(engine, "/v1.50/containers/older/json")
    assert doc["Config"]["Healthcheck"].get("StartInterval", 0) == 0
    assert "Annotations" not in doc["HostConfig"]
    assert doc["NetworkSettings"]["Networks"]["vn1"]["MacAddress"] != "02:42:ac:11:00:57"
    status, _, body = curl(engine, "POST", "/v1.50/containers/create?name=newer", json.dumps(newer))
    assert status == 201, body
    doc = get(engine, "/v1.50/containers/newer/json")
    assert (doc["Config"]["Healthcheck"]["StartInterval"], doc["HostConfig"]["Annotations"]) == \
        (2_000_000_000, {"a": "b"})
    ok(engine, "rm", "-f", "two", "older", "newer")
    ok(engine, "network", "rm", "vn1", "vn2")


def test_the_stop_signal_came_with_1_42(engine) -> None:
    ok(engine, "run", "-d", "--name", "trapper", "busybox", "sh", "-c",
       "trap 'exit 7' USR1; trap 'exit 9' TERM; echo ready; while true; do sleep 0.1; done")
    until(lambda: "ready" in ok(engine, "logs", "trapper"))
    status, _, body = curl(engine, "POST", "/v1.41/containers/trapper/stop?signal=USR1&t=5")
    assert status == 204, body
    assert get(engine, "/v1.50/containers/trapper/json")["State"]["ExitCode"] == 9
    ok(engine, "start", "trapper")
    until(lambda: ok(engine, "logs", "trapper").count("ready") == 2)
    status, _, body = curl(engine, "POST", "/v1.42/containers/trapper/stop?signal=USR1&t=5")
    assert status == 204, body
    assert get(engine, "/v1.50/containers/trapper/json")["State"]["ExitCode"] == 7
    ok(engine, "rm", "trapper")


def test_info_fields_by_version(engine) -> None:
    new, old = get(engine, "/v1.50/info"), get(engine, "/v1.41/info")
    assert new["CDISpecDirs"] == [] and "CDISpecDirs" not in old
    assert "KernelMemory" not in new
    assert new["Plugins"]["Authorization"] is None
