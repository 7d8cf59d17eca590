"""Image endpoints of pyengined, driven by the real docker CLI and the docker SDK."""
from __future__ import annotations

import asyncio
import hashlib
import json
import platform
import subprocess
import time

import docker
import pytest

from engine.config import DEFAULT_RUNTIME_NAMESPACE
from engine.images.leases import LEASE_PREFIX

from tests.fixtures.daemons import EngineDaemon

BUSYBOX = "library/busybox:latest"
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


@pytest.fixture
def engine(hub_engine: EngineDaemon) -> EngineDaemon:
    """Docker Hub mirrored by the fixture registry, so `busybox` resolves offline."""
    return hub_engine


def docker_cli(engine: EngineDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=engine.env(), capture_output=True, text=True, timeout=120,
                          check=False)


def ok(engine: EngineDaemon, *args: str) -> str:
    out = docker_cli(engine, *args)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def image_rows(engine: EngineDaemon, *args: str) -> list[str]:
    return ok(engine, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", *args).split("\n")[:-1]


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def test_cli_pull_from_registry_then_images(engine, registry, images):
    ref = f"{registry.host}/library/busybox"
    image = images[BUSYBOX]
    layer = short(image.layer_digests[0])
    out = ok(engine, "pull", ref)
    lines = out.splitlines()
    assert lines[0] == "Using default tag: latest"
    assert lines[1] == "latest: Pulling from library/busybox"
    assert f"{layer}: Pulling fs layer" in lines
    assert f"{layer}: Pull complete" in lines
    assert lines.index(f"{layer}: Download complete") < lines.index(f"{layer}: Pull complete")
    assert lines[-3:] == [f"Digest: {image.digest}", f"Status: Downloaded newer image for {ref}:latest",
                          f"{ref}:latest"]

    again = ok(engine, "pull", ref).splitlines()
    assert again[1:] == ["latest: Pulling from library/busybox", f"Digest: {image.digest}",
                         f"Status: Image is up to date for {ref}:latest", f"{ref}:latest"]

    assert image_rows(engine) == [f"{ref}:latest {short(image.config_digest)}"]
    listed = json.loads(ok(engine, "images", "--format", "{{json .}}"))
    assert listed["Size"] != "0B" and listed["CreatedAt"].startswith("2024-01-01")
    assert ok(engine, "images", "--digests", "--format", "{{.Digest}}").strip() == image.digest


def test_cli_pull_through_mirror_inspect_and_history(engine, images):
    image = images[BUSYBOX]
    out = ok(engine, "pull", "busybox")
    assert out.splitlines()[-1] == "docker.io/library/busybox:latest"

    doc = json.loads(ok(engine, "image", "inspect", "busybox"))[0]
    config = image.config_json
    assert doc["Id"] == image.config_digest
    assert doc["RepoTags"] == ["busybox:latest"]
    assert doc["RepoDigests"] == [f"busybox@{image.digest}"]
    assert doc["Config"]["Cmd"] == ["sh"] and doc["Config"]["Env"] == config["config"]["Env"]
    assert doc["Config"]["Entrypoint"] is None and doc["Config"]["WorkingDir"] == ""
    assert doc["RootFS"] == {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]}
    assert (doc["Os"], doc["Architecture"], doc["Created"]) == ("linux", config["architecture"],
                                                               "2024-01-01T00:00:00Z")
    assert doc["Size"] > 0 and "VirtualSize" not in doc  # gone since API 1.44
    assert doc["GraphDriver"]["Name"] == "overlayfs"

    hexid = image.config_digest.removeprefix("sha256:")
    for term in (hexid[:5], f"sha256:{hexid[:9]}", image.config_digest, f"busybox@{image.digest}",
                 "docker.io/library/busybox:latest"):
        assert json.loads(ok(engine, "image", "inspect", term))[0]["Id"] == image.config_digest, term

    history = ok(engine, "history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}", "busybox").splitlines()
    assert history == [f"{image.config_digest}|ADD busybox rootfs /"]

    # The digest a tag was pulled at is a name of its own, as in dockerd: removing it leaves the tag, a new
    # pull gives it back.
    assert ok(engine, "rmi", f"busybox@{image.digest}") == f"Untagged: busybox@{image.digest}\n"
    doc = json.loads(ok(engine, "image", "inspect", "busybox"))[0]
    assert (doc["RepoTags"], doc["RepoDigests"]) == (["busybox:latest"], [])
    ok(engine, "pull", "busybox")
    assert json.loads(ok(engine, "image", "inspect", "busybox"))[0]["RepoDigests"] == [f"busybox@{image.digest}"]


def test_tag_and_rmi_untag_versus_delete(engine, images):
    image_id = images[BUSYBOX].config_digest
    ok(engine, "pull", "busybox")
    ok(engine, "tag", "busybox", "mybox:1")
    ok(engine, "tag", image_id[7:15], "other/box")
    assert sorted(image_rows(engine)) == sorted(f"{n} {short(image_id)}"
                                                for n in ("busybox:latest", "mybox:1", "other/box:latest"))

    assert ok(engine, "rmi", "mybox:1").splitlines() == ["Untagged: mybox:1"]
    refused = docker_cli(engine, "rmi", short(image_id))
    assert refused.returncode == 1
    assert (f"conflict: unable to delete {short(image_id)} (must be forced) - image is referenced in multiple "
            "repositories") in refused.stderr

    removed = ok(engine, "rmi", "-f", short(image_id)).splitlines()
    # As dockerd: the image, then its layers (chain IDs) that no other image holds.
    layers = [line for line in removed if line.startswith("Deleted: ") and line != f"Deleted: {image_id}"]
    assert layers and removed[-len(layers):] == layers
    assert sorted(set(removed) - set(layers)) == sorted([f"Deleted: {image_id}", "Untagged: busybox:latest",
                                                         f"Untagged: busybox@{images[BUSYBOX].digest}",
                                                         "Untagged: other/box:latest"])
    assert image_rows(engine) == []


def test_unknown_images_and_tags_give_clear_errors(engine, registry):
    rmi = docker_cli(engine, "rmi", "nosuch")
    assert rmi.returncode == 1 and "No such image: nosuch:latest" in rmi.stderr
    inspect = docker_cli(engine, "image", "inspect", "nosuch")
    assert inspect.returncode == 1 and "No such image" in inspect.stderr
    tag = docker_cli(engine, "tag", "nosuch", "x")
    assert tag.returncode == 1 and "No such image: nosuch:latest" in tag.stderr

    missing = docker_cli(engine, "pull", f"{registry.host}/library/busybox:nosuch")
    assert missing.returncode == 1
    assert (f"manifest for {registry.host}/library/busybox:nosuch not found: manifest unknown: manifest unknown"
            in missing.stderr)
    # A repository the registry never had: its own answer (distribution's MANIFEST_UNKNOWN), as dockerd passes on.
    missing = docker_cli(engine, "pull", f"{registry.host}/nope/x:1")
    assert (missing.returncode, missing.stderr) == (
        1, f"Error response from daemon: manifest for {registry.host}/nope/x:1 not found: manifest unknown: "
           "manifest unknown\n")

    client = docker.APIClient(base_url=engine.host)
    try:
        resp = client._post(client._url("/images/create"), params={"fromImage": f"{registry.host}/nope/x",
                                                                    "tag": "1"})
        assert resp.status_code == 404 and resp.headers["Content-Type"] == "application/json"
        assert "not found" in resp.json()["message"]
    finally:
        client.close()


def test_sdk_pull_stream_list_and_get_by_prefix(engine, sdk, registry, images):
    repo = f"{registry.host}/library/busybox"
    image = images[BUSYBOX]
    messages = list(sdk.api.pull(repo, tag="latest", stream=True, decode=True))
    statuses = [m["status"] for m in messages]
    assert statuses[0] == "Pulling from library/busybox" and messages[0]["id"] == "latest"
    for status in ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete", "Extracting",
                   "Pull complete"):
        assert status in statuses, statuses
    downloading = next(m for m in messages if m["status"] == "Downloading")
    assert downloading["id"] == short(image.layer_digests[0])
    assert downloading["progressDetail"]["total"] == len(image.blobs[image.layer_digests[0]])
    assert downloading["progress"].startswith("[")
    # Both bars end full, as dockerd's do, however small the layer (compose prints the last one).
    for status in ("Downloading", "Extracting"):
        last = [m for m in messages if m["status"] == status][-1]
        assert last["progressDetail"]["current"] == last["progressDetail"]["total"] > 0, last
    assert statuses[-2:] == [f"Digest: {image.digest}", f"Status: Downloaded newer image for {repo}:latest"]

    pulled = sdk.images.pull(repo, tag="latest")
    assert pulled.id == image.config_digest and pulled.tags == [f"{repo}:latest"]
    assert [i.id for i in sdk.images.list()] == [image.config_digest]
    assert sdk.images.get(image.config_digest[7:17]).id == image.config_digest
    with pytest.raises(docker.errors.ImageNotFound):
        sdk.images.get("0000000000")


def test_pull_by_digest_and_multiplatform_index(engine, registry, images):
    busybox = images[BUSYBOX]
    by_digest = f"{registry.host}/library/busybox@{busybox.digest}"
    out = ok(engine, "pull", by_digest).splitlines()
    assert out[0] == f"{by_digest}: Pulling from library/busybox"
    assert out[-1] == by_digest
    assert image_rows(engine) == [f"{registry.host}/library/busybox:<none> {short(busybox.config_digest)}"]

    multi = images["library/multi:latest"]
    ok(engine, "pull", f"{registry.host}/library/multi")
    native = multi.platform_image(HOST_ARCH)
    doc = json.loads(ok(engine, "image", "inspect", f"{registry.host}/library/multi"))[0]
    assert doc["Id"] == native.config_digest
    assert doc["RepoDigests"] == [f"{registry.host}/library/multi@{multi.digest}"]
    assert doc["Architecture"] == HOST_ARCH


def test_images_filters(engine, registry, images):
    ok(engine, "pull", "busybox")
    ok(engine, "pull", f"{registry.host}/library/whiteout")
    ok(engine, "tag", "busybox", "busybox:v2")
    busybox_id = short(images[BUSYBOX].config_digest)
    assert sorted(image_rows(engine, "busybox")) == [f"busybox:latest {busybox_id}", f"busybox:v2 {busybox_id}"]
    assert image_rows(engine, "busybox:v2") == [f"busybox:v2 {busybox_id}"]
    assert image_rows(engine, "--filter", "reference=*/library/white*") == [
        f"{registry.host}/library/whiteout:latest {short(images['library/whiteout:latest'].config_digest)}"]
    assert image_rows(engine, "--filter", "dangling=true") == []
    assert image_rows(engine, "--filter", "label=nope") == []
    bad = docker_cli(engine, "images", "--filter", "colour=red")
    assert bad.returncode == 1 and "invalid filter 'colour'" in bad.stderr
    bad = docker_cli(engine, "images", "--filter", "dangling=1")  # the list takes true or false only (dockerd)
    assert (bad.returncode, bad.stderr) == (1, "Error response from daemon: invalid filter 'dangling=[1]'\n")


def test_moved_tag_leaves_dangling_image_that_prune_removes(engine, registry, images):
    whiteout_id = images["library/whiteout:latest"].config_digest
    ok(engine, "pull", "busybox")
    ok(engine, "pull", f"{registry.host}/library/whiteout")
    ok(engine, "tag", f"{registry.host}/library/whiteout", "app:1")
    ok(engine, "rmi", f"{registry.host}/library/whiteout")
    ok(engine, "tag", "busybox", "app:1")  # app:1 moves away: the whiteout image loses its last name

    assert image_rows(engine, "--filter", "dangling=true") == [f"<none>:<none> {short(whiteout_id)}"]
    pruned = ok(engine, "image", "prune", "-f")
    assert f"deleted: {whiteout_id}" in pruned
    assert "Total reclaimed space: 0B" not in pruned
    assert sorted(r.split()[0] for r in image_rows(engine)) == ["app:1", "busybox:latest"]

    # dangling=false prunes every unused image.
    assert "deleted: " + images[BUSYBOX].config_digest in ok(engine, "image", "prune", "-a", "-f")
    assert image_rows(engine) == []


def test_image_used_by_container_needs_force(engine, images):
    image_id = images[BUSYBOX].config_digest
    ok(engine, "pull", "busybox")
    # The engine's own container records say who uses an image (not the runtime's containers).
    cid = ok(engine, "create", "busybox", "true").strip()
    refused = docker_cli(engine, "rmi", "busybox")
    assert refused.returncode == 1
    assert ('conflict: unable to remove repository reference "busybox" (must force) - container '
            f"{cid[:12]} is using its referenced image {short(image_id)}") in refused.stderr
    by_id = docker_cli(engine, "rmi", short(image_id))
    assert by_id.returncode == 1 and f"being used by stopped container {cid[:12]}" in by_id.stderr
    assert "Total reclaimed space: 0B" in ok(engine, "image", "prune", "-a", "-f")

    # Forced past a stopped container, it is deleted as dockerd deletes it (the container keeps its layers).
    assert ok(engine, "rmi", "-f", "busybox").splitlines() == [
        "Untagged: busybox:latest", f"Untagged: busybox@{images[BUSYBOX].digest}", f"Deleted: {image_id}"]
    assert image_rows(engine) == []
    ok(engine, "rm", cid)
    # A running container's image stays, untagged.
    ok(engine, "pull", "busybox")
    cid = ok(engine, "run", "-d", "busybox", "sleep", "60").strip()
    assert ok(engine, "rmi", "-f", "busybox").splitlines()[0] == "Untagged: busybox:latest"
    assert image_rows(engine) == [f"<none>:<none> {short(image_id)}"]
    ok(engine, "rm", "-f", cid)
    ok(engine, "pull", "busybox")


def test_sdk_pull_with_credentials(runtime_daemon, basic_registry):
    e = EngineDaemon(runtime_daemon)
    e.start()
    client = docker.DockerClient(base_url=e.host)
    try:
        repo = f"{basic_registry.host}/library/busybox"
        with pytest.raises(docker.errors.APIError) as denied:
            client.images.pull(repo, tag="latest")
        # dockerd's status for it: 500 (a 401 makes the docker CLI prompt for a login).
        assert denied.value.status_code == 500 and "authentication required" in str(denied.value)
        username, password = basic_registry.credentials
        pulled = client.images.pull(repo, tag="latest", auth_config={"username": username, "password": password})
        assert pulled.tags == [f"{repo}:latest"]
    finally:
        client.close()
        e.stop()


def test_failure_after_streaming_started_is_an_error_message(engine, registry, sdk):
    # The layer downloads fine and is refused at unpack: by then the 200 and progress are sent.
    ref = f"{registry.host}/hostile/absolute"
    out = docker_cli(engine, "pull", ref)
    assert out.returncode == 1
    assert "latest: Pulling from hostile/absolute" in out.stdout
    assert "abs-escape" in out.stderr
    messages = list(sdk.api.pull(ref, tag="latest", stream=True, decode=True))
    assert messages[0]["status"] == "Pulling from hostile/absolute"
    assert messages[-1]["error"] == messages[-1]["errorDetail"]["message"] and "abs-escape" in messages[-1]["error"]
    assert image_rows(engine) == []


def test_pull_all_tags(engine, registry, images):
    from tests.fixtures.registry import push
    repo = f"alltags{__import__('secrets').token_hex(3)}/busybox"
    for tag in ("a", "b"):
        push(registry, repo, tag, images[BUSYBOX])
    # No `latest` in the repository: every tag it lists comes, with one status for the repository at the end.
    out = ok(engine, "pull", "-a", f"{registry.host}/{repo}").splitlines()
    assert "a: Pulling from " + repo in out and "b: Pulling from " + repo in out
    assert out[-2:] == [f"Status: Downloaded newer image for {registry.host}/{repo}", f"{registry.host}/{repo}"]
    assert sorted(image_rows(engine, f"{registry.host}/{repo}")) == [
        f"{registry.host}/{repo}:{tag} {short(images[BUSYBOX].config_digest)}" for tag in ("a", "b")]
    again = ok(engine, "pull", "--all-tags", f"{registry.host}/{repo}").splitlines()
    assert again[-2] == f"Status: Image is up to date for {registry.host}/{repo}"
    out = docker_cli(engine, "pull", "-a", f"{registry.host}/nosuch{repo}")
    assert out.returncode != 0 and "not found" in out.stderr


def test_pulls_of_what_is_here_say_so_as_dockerd(engine, registry, images):
    busybox = images[BUSYBOX]
    ok(engine, "pull", f"{registry.host}/library/busybox")
    # Its digest came with the tag: pulled by digest now, it is up to date, and no layer is mentioned.
    out = ok(engine, "pull", f"{registry.host}/library/busybox@{busybox.digest}").splitlines()
    assert out[-2] == f"Status: Image is up to date for {registry.host}/library/busybox@{busybox.digest}"
    assert not [line for line in out if short(busybox.layer_digests[0]) in line]
    # The same image under another repository: a new name (newer), still no layer to speak of.
    from tests.fixtures.registry import push
    push(registry, "library/samebox", "v1", busybox)
    out = ok(engine, "pull", f"{registry.host}/library/samebox:v1").splitlines()
    assert out[-2] == f"Status: Downloaded newer image for {registry.host}/library/samebox:v1"
    assert not [line for line in out if short(busybox.layer_digests[0]) in line]


def _chain_ids(diff_ids: list[str]) -> list[str]:
    chain = [diff_ids[0]]
    for diff in diff_ids[1:]:
        chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {diff}".encode()).hexdigest())
    return chain


def test_prune_reports_each_released_layer_once(engine, registry, images):
    # Two images on one base layer: the shared layer is released (and reported) with the last of them.
    ok(engine, "pull", "busybox")
    ok(engine, "pull", f"{registry.host}/library/whiteout")
    layers = {c for name in ("busybox", f"{registry.host}/library/whiteout")
              for c in _chain_ids(json.loads(ok(engine, "image", "inspect", name))[0]["RootFS"]["Layers"])}
    sizes = [json.loads(ok(engine, "image", "inspect", name))[0]["Size"]
             for name in ("busybox", f"{registry.host}/library/whiteout")]
    client = docker.DockerClient(base_url=engine.env()["DOCKER_HOST"], version="1.41")
    report = client.images.prune(filters={"dangling": False})
    deleted = [item["Deleted"] for item in report["ImagesDeleted"] if "Deleted" in item]
    ids = {images[BUSYBOX].config_digest, images["library/whiteout:latest"].config_digest}
    assert len(deleted) == len(set(deleted)) and set(deleted) == ids | layers
    # The layers' unpacked bytes, as dockerd counts them (and as `Size` shows), not their compressed blobs.
    assert max(sizes) <= report["SpaceReclaimed"] <= sum(sizes), (sizes, report["SpaceReclaimed"])


def test_an_image_whose_snapshots_are_gone_is_unpacked_again_at_create(engine):
    # What a daemon killed between storing an image and unpacking it leaves (a build step's, a commit's).
    ok(engine, "pull", "busybox")

    async def drop_layers() -> None:
        async with engine.runtime.client(DEFAULT_RUNTIME_NAMESPACE) as c:
            for s in await c.snapshots("overlayfs"):
                if s["kind"] == "committed":
                    await c.remove_snapshot("overlayfs", s["key"])

    asyncio.run(drop_layers())
    assert ok(engine, "run", "--rm", "busybox", "echo", "unpacked") == "unpacked\n"


def test_the_repository_digest_stays_while_the_repository_has_a_tag_of_the_image(engine, registry, images):
    name = f"{registry.host}/library/busybox"
    digest = f"{name}@{images[BUSYBOX].digest}"
    ok(engine, "pull", name)

    def digests() -> list[str]:
        return json.loads(ok(engine, "image", "inspect", "-f", "{{json .RepoDigests}}", images[BUSYBOX].config_digest))

    # A tag onto the name it already has changes nothing, as dockerd.
    ok(engine, "tag", f"{name}:latest", f"{name}:latest")
    assert digests() == [digest]
    # Its pulled tag removed, another tag of that repository keeps the digest.
    ok(engine, "tag", f"{name}:latest", f"{name}:v2")
    assert ok(engine, "rmi", f"{name}:latest") == f"Untagged: {name}:latest\n"
    assert digests() == [digest]
    assert ok(engine, "rmi", f"{name}:v2").splitlines()[:2] == [f"Untagged: {name}:v2", f"Untagged: {digest}"]


def test_before_and_since_tell_apart_images_made_within_one_second(engine):
    ok(engine, "pull", "busybox")
    ok(engine, "create", "--name", "src", "busybox", "true")
    ok(engine, "commit", "src", "first:1")
    ok(engine, "commit", "-c", "LABEL n=2", "src", "second:1")
    assert [r.split()[0] for r in image_rows(engine, "--filter", "since=first:1")] == ["second:1"]
    assert "first:1" in [r.split()[0] for r in image_rows(engine, "--filter", "before=second:1")]
    # until (API 1.44's, the clean-up idiom `images -q --filter until=24h`): made before that time.
    assert {"first:1", "second:1"} <= {r.split()[0] for r in image_rows(engine, "--filter", f"until={time.time() + 3600:.0f}")}
    assert not {"first:1", "second:1"} & {r.split()[0] for r in image_rows(engine, "--filter", "until=1h")}
    ok(engine, "rm", "src")


def test_leases_an_engine_left_go_at_its_next_start(runtime_daemon):
    # An engine killed mid-load, mid-import or mid-build leaves its operation's lease, which would hold what the
    # operation wrote for hours: the next engine drops it, and only the engine's own.
    e = EngineDaemon(runtime_daemon)
    e.start()
    e.stop()

    async def leases() -> set[str]:
        async with runtime_daemon.client(DEFAULT_RUNTIME_NAMESPACE) as c:
            return {lease["id"] for lease in await c.leases()}

    async def leave() -> None:
        async with runtime_daemon.client(DEFAULT_RUNTIME_NAMESPACE) as c:
            await c.create_lease(f"{LEASE_PREFIX}killed", 3600)
            await c.create_lease("someone-elses", 3600)

    asyncio.run(leave())
    e.start()
    try:
        deadline = time.monotonic() + 10
        while f"{LEASE_PREFIX}killed" in asyncio.run(leases()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert asyncio.run(leases()) >= {"someone-elses"} and f"{LEASE_PREFIX}killed" not in asyncio.run(leases())
    finally:
        e.stop()
