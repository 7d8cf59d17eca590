"""What the docker CLI 28 sends at API 1.50 beyond what dockerd 20.10 knows: each option honoured or refused by
name, never taken and ignored (docs/compatibility.md, session 17)."""
from __future__ import annotations

import json
import os
import urllib.parse

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers

_ARM64 = urllib.parse.quote(json.dumps({"os": "linux", "architecture": "arm64"}))


def test_platform_parameters_are_honoured_or_refused(engine, tmp_path) -> None:
    ok(engine, "pull", "busybox")
    own = json.loads(ok(engine, "image", "inspect", "busybox"))[0]
    mine = urllib.parse.quote(json.dumps({"os": own["Os"], "architecture": own["Architecture"]}))
    for path in ("/v1.50/images/busybox/json", "/v1.50/images/busybox/history"):
        assert curl(engine, "GET", f"{path}?platform={mine}")[0] == 200
        status, _, body = curl(engine, "GET", f"{path}?platform={_ARM64}")
        assert status == 404 and "linux/arm64" in json.loads(body)["message"], body
    status, _, body = curl(engine, "DELETE", f"/v1.50/images/busybox?platforms={_ARM64}")
    assert status == 400 and "platforms" in json.loads(body)["message"]
    assert ok(engine, "images", "-q", "busybox")  # still there
    ok(engine, "save", "-o", str(tmp_path / "b.tar"), "busybox")
    out = cli(engine, "load", "--platform", "linux/arm64", "-i", str(tmp_path / "b.tar"))
    assert out.returncode != 0 and "no image for platform linux/arm64" in out.stderr, out
    os.unlink(tmp_path / "b.tar")
    # shared-size: the bytes of layers another image has too (a commit shares all of busybox's).
    ok(engine, "run", "--name", "sh1", "--network", "none", "busybox", "sh", "-c",
       "i=0; while [ $i -lt 100 ]; do echo 0123456789012345678901234567890123456789 >> /new; i=$((i+1)); done")
    ok(engine, "commit", "sh1", "derived:1")
    listed = {i["RepoTags"][0]: i for i in json.loads(curl(engine, "GET", "/v1.50/images/json?shared-size=1")[2])}
    assert listed["busybox:latest"]["SharedSize"] == listed["busybox:latest"]["Size"] > 0
    assert 0 < listed["derived:1"]["SharedSize"] < listed["derived:1"]["Size"]
    assert {i["SharedSize"] for i in json.loads(curl(engine, "GET", "/v1.50/images/json")[2])} == {-1}
    ok(engine, "rm", "sh1")
    ok(engine, "rmi", "derived:1")


def test_refusals_and_query_parameters(engine) -> None:
    body = json.dumps({"Name": "cv", "ClusterVolumeSpec": {"Group": "g"}})
    status, _, out = curl(engine, "POST", "/v1.50/volumes/create", body)
    assert status == 503 and "ClusterVolumeSpec" in json.loads(out)["message"]
    assert ok(engine, "volume", "ls", "-q") == ""
    ok(engine, "volume", "create", "dfv")
    status, _, out = curl(engine, "GET", "/v1.50/system/df?type=volume")
    doc = json.loads(out)
    assert status == 200 and [v["Name"] for v in doc["Volumes"]] == ["dfv"]
    assert (doc["Images"], doc["Containers"], doc["BuildCache"], doc["LayersSize"]) == (None, None, None, 0)
    assert curl(engine, "GET", "/v1.50/system/df?type=bogus")[0] == 400
    ok(engine, "volume", "rm", "dfv")
    for path in ("/session", "/grpc"):
        status, _, out = curl(engine, "POST", path)
        assert status == 501 and "BuildKit" in json.loads(out)["message"], out
    ok(engine, "run", "-d", "--name", "rt", "--network", "none", "busybox", "sleep", "60")
    out = cli(engine, "update", "--cpu-rt-runtime", "1000", "rt")
    assert out.returncode != 0 and "CpuRealtimeRuntime cannot be updated" in out.stderr, out
    # A working directory that is missing fails the exec with dockerd's 126, not a missing program's 127.
    assert cli(engine, "exec", "-w", "/nonexistent", "rt", "true").returncode == 126
    assert cli(engine, "exec", "rt", "/nonexistent").returncode == 127
    ok(engine, "rm", "-f", "rt")


def test_a_static_address_needs_a_subnet_the_user_gave(engine) -> None:
    ok(engine, "network", "create", "auto1")
    subnet = json.loads(ok(engine, "network", "inspect", "auto1"))[0]["IPAM"]["Config"][0]["Subnet"]
    address = subnet.rsplit(".", 2)[0] + ".0.77"
    out = cli(engine, "run", "--rm", "--network", "auto1", "--ip", address, "busybox", "true")
    assert out.returncode != 0 and "user configured subnets" in out.stderr, out.stderr
    ok(engine, "network", "create", "--subnet", "10.231.0.0/24", "given1")
    assert ok(engine, "run", "--rm", "--network", "given1", "--ip", "10.231.0.77", "busybox", "hostname", "-i") == \
        "10.231.0.77\n"
    ok(engine, "network", "rm", "auto1", "given1")


def test_manifests_of_an_image_for_image_ls_tree(engine) -> None:
    # An index pulled for this machine's platform: the other platform's manifest is listed, not available.
    ok(engine, "pull", "multi")
    ok(engine, "create", "--name", "user", "--network", "none", "multi", "true")
    cid = json.loads(ok(engine, "inspect", "user"))[0]["Id"]
    only_multi = urllib.parse.quote(json.dumps({"reference": ["multi"]}))
    listed = json.loads(curl(engine, "GET", f"/v1.50/images/json?manifests=1&filters={only_multi}")[2])
    manifests = listed[0]["Manifests"]
    here = [m for m in manifests if m["Available"]]
    assert len(manifests) == 2 and len(here) == 1 and {m["Kind"] for m in manifests} == {"image"}
    mine = here[0]
    assert mine["ImageData"]["Containers"] == [cid] and mine["ImageData"]["Platform"]["os"] == "linux"
    assert mine["Size"]["Total"] == mine["Size"]["Content"] + mine["ImageData"]["Size"]["Unpacked"]
    assert mine["Size"]["Content"] > 0 and mine["ImageData"]["Size"]["Unpacked"] > 0
    assert mine["Descriptor"]["digest"] == mine["ID"] and mine["Descriptor"]["platform"]
    other = next(m for m in manifests if not m["Available"])
    assert other["ImageData"]["Containers"] == [] and other["Size"]["Content"] == 0
    assert "Manifests" not in json.loads(curl(engine, "GET", "/v1.46/images/json?manifests=1")[2])[0]
    inspected = json.loads(curl(engine, "GET", "/v1.50/images/multi/json?manifests=1")[2])
    assert inspected["Manifests"] == manifests
    assert "Manifests" not in json.loads(curl(engine, "GET", "/v1.47/images/multi/json?manifests=1")[2])
    # The docker CLI's experimental tree shows the platform's row under the name.
    tree = ok(engine, "image", "ls", "--tree", "multi")
    assert mine["ImageData"]["Platform"]["architecture"] in tree
    ok(engine, "rm", "user")
    ok(engine, "rmi", "multi")


def test_an_image_mounted_read_only(engine) -> None:
    # --mount type=image (API 1.48): another image's files, read-only, the whole image or a path of it.
    ok(engine, "run", "--name", "maker", "--network", "none", "busybox", "sh", "-c",
       "mkdir -p /tools/bin && echo hello > /tools/bin/hello")
    ok(engine, "commit", "maker", "tools:1")
    ok(engine, "rm", "maker")
    whole = "type=image,source=tools:1,target=/mnt"
    assert ok(engine, "run", "--rm", "--network", "none", "--mount", whole, "busybox",
              "cat", "/mnt/tools/bin/hello") == "hello\n"
    out = cli(engine, "run", "--rm", "--network", "none", "--mount", whole, "busybox", "touch", "/mnt/x")
    assert out.returncode != 0 and "Read-only file system" in out.stderr, out
    part = "type=image,source=tools:1,target=/t,image-subpath=tools/bin"
    ok(engine, "create", "--name", "mounter", "--network", "none", "--mount", part, "busybox", "cat", "/t/hello")
    assert ok(engine, "start", "-a", "mounter") == "hello\n"
    assert ok(engine, "start", "-a", "mounter") == "hello\n"  # mounted again at each start
    mount = json.loads(ok(engine, "inspect", "mounter"))[0]["Mounts"]
    assert mount == [{"Type": "image", "Source": "tools:1", "Destination": "/t", "Mode": "", "RW": False,
                      "Propagation": "rprivate"}]
    out = cli(engine, "rmi", "tools:1")
    assert out.returncode != 0 and "mounter" not in out.stdout and "conflict" in out.stderr, out
    with open("/proc/self/mountinfo") as f:
        assert "image-mounts" not in f.read()  # nothing held between runs
    ok(engine, "rm", "mounter")
    for spec, words in (("type=image,source=tools:1,target=/t,image-subpath=../x", "subpath must be a relative path"),
                        ("type=image,source=nosuch:1,target=/t", "No such image"),
                        ("type=image,source=tools:1,target=/t,image-subpath=nope", "nope")):
        out = cli(engine, "run", "--rm", "--network", "none", "--mount", spec, "busybox", "true")
        assert out.returncode != 0 and words in out.stderr, (spec, out)
    ok(engine, "rmi", "tools:1")
    with open("/proc/self/mountinfo") as f:
        assert "image-mounts" not in f.read()
