"""Issue 2 acceptance: pulls from a real registry through pyruntimed and pyctr."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from runtime.client import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from tests.fixtures import images as fx
from tests.fixtures.daemons import RuntimeDaemon
from tests.integration.helpers import (
    blob_files,
    chain_id,
    mounted_view,
    pull,
    pyctr,
    raw_request,
    verify_blob,
)


def _top_chain(image: fx.Image) -> str:
    return chain_id(image.config_json["rootfs"]["diff_ids"])


async def _store_state(d: RuntimeDaemon, namespace: str = "default") -> tuple:
    async with d.client(namespace) as c:
        imgs = sorted(i.name for i in await c.images())
        content = sorted(x.digest for x in await c.content())
        snaps = sorted(s["key"] for s in await c.snapshots("overlayfs"))
    return imgs, content, snaps, sorted(blob_files(d.root))


def test_pull_and_list_with_pyctr(runtime_daemon, pyctr_env, registry, images):
    ref = f"{registry.host}/library/busybox:latest"
    out = pyctr(pyctr_env, "images", "pull", ref, check=True)
    image = images["library/busybox:latest"]
    assert image.digest in out.stdout
    ls = pyctr(pyctr_env, "images", "ls", check=True).stdout
    assert ref in ls and image.digest in ls
    assert os.stat(runtime_daemon.address).st_mode & 0o777 == 0o660
    with mounted_view(runtime_daemon.address, "overlayfs", _top_chain(image)) as root:
        assert (root / "bin" / "busybox").is_file()
        assert os.access(root / "bin" / "busybox", os.X_OK)
        assert os.readlink(root / "bin" / "sh") == "busybox"


@pytest.mark.parametrize("tag", ["docker", "zstd"])
def test_pull_docker_media_types_and_zstd(runtime_daemon, registry, images, tag):
    image = images[f"library/busybox:{tag}"]

    async def go():
        async with runtime_daemon.client() as c:
            return await pull(c, f"{registry.host}/library/busybox:{tag}")

    got = asyncio.run(go())
    assert got["target"]["digest"] == image.digest
    with mounted_view(runtime_daemon.address, "overlayfs", _top_chain(image)) as root:
        assert (root / "bin" / "busybox").is_file()


@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
def test_whiteouts_and_opaque_dirs_union(runtime_daemon, registry, images, snapshotter):
    image = images["library/whiteout:latest"]

    async def go():
        async with runtime_daemon.client() as c:
            await pull(c, f"{registry.host}/library/whiteout:latest", snapshotter=snapshotter)

    asyncio.run(go())
    with mounted_view(runtime_daemon.address, snapshotter, _top_chain(image)) as root:
        for p in fx.EXPECTED_PRESENT:
            assert os.path.lexists(root / p), p
        for p in fx.EXPECTED_ABSENT:
            assert not os.path.lexists(root / p), p
        for p, data in fx.EXPECTED_CONTENT.items():
            assert (root / p).read_bytes() == data


@pytest.mark.parametrize("name", sorted(fx.HOSTILE_ENTRY))
def test_hostile_layers_are_refused(runtime_daemon, registry, name):
    canaries = [Path("/abs-escape"), Path("/dotdot-escape"), Path("/nested-escape"), Path("/tmp/symlink-escape"),
                Path("/tmp/symlink-relative-escape")]
    passwd_before = Path("/etc/passwd").read_bytes()
    before = asyncio.run(_store_state(runtime_daemon))

    async def go():
        async with runtime_daemon.client() as c:
            await pull(c, f"{registry.host}/hostile/{name}:latest")

    with pytest.raises(InvalidArgument) as e:
        asyncio.run(go())
    assert fx.HOSTILE_ENTRY[name] in str(e.value)
    for c in canaries:
        assert not c.exists(), c
    base = Path(runtime_daemon.base)
    assert not any(p.name.endswith("escape") for p in base.parent.iterdir())
    assert Path("/etc/passwd").read_bytes() == passwd_before
    assert asyncio.run(_store_state(runtime_daemon)) == before


def test_corrupted_blob_is_never_committed(runtime_daemon, proxy, images):
    image = images["library/busybox:latest"]
    layer = image.layer_digests[0]
    ref = f"{proxy.host}/library/busybox:latest"
    before = asyncio.run(_store_state(runtime_daemon))
    proxy.corrupt_next_blob(layer)

    async def go():
        async with runtime_daemon.client() as c:
            return await pull(c, ref)

    with pytest.raises(Exception) as e:
        asyncio.run(go())
    assert "digest" in str(e.value)
    assert asyncio.run(_store_state(runtime_daemon)) == before
    got = asyncio.run(go())
    assert got["target"]["digest"] == image.digest
    assert all(verify_blob(p) for p in blob_files(runtime_daemon.root).values())


def test_basic_auth_registry(runtime_daemon, pyctr_env, basic_registry):
    user, password = basic_registry.credentials
    ref = f"{basic_registry.host}/library/busybox:latest"
    ok = pyctr(pyctr_env, "images", "pull", "-u", f"{user}:{password}", ref)
    assert ok.returncode == 0, ok.stderr
    bad = pyctr(pyctr_env, "images", "pull", "-u", f"{user}:wrong", ref)
    assert bad.returncode != 0
    assert "authentication" in bad.stderr.lower()
    assert "Traceback" not in bad.stderr


def test_token_auth_registry(runtime_daemon, token_registry):
    user, password = token_registry.credentials
    ref = f"{token_registry.host}/library/busybox:latest"

    async def go(pw):
        async with runtime_daemon.client() as c:
            return await pull(c, ref, credentials={"username": user, "password": pw})

    assert asyncio.run(go(password))["name"] == ref
    with pytest.raises(Unauthenticated) as e:
        asyncio.run(go("wrong"))
    assert "authentication" in str(e.value).lower()


def test_multiplatform_index_resolves_host_platform(runtime_daemon, registry, images):
    index = images["library/multi:latest"]
    amd64 = index.platform_image("amd64")

    async def go():
        async with runtime_daemon.client() as c:
            got = await pull(c, f"{registry.host}/library/multi:latest", platform="linux/amd64")
            content = {x.digest for x in await c.content()}
            return got, content

    got, content = asyncio.run(go())
    assert got["target"]["digest"] == index.digest
    assert amd64.digest in content
    with mounted_view(runtime_daemon.address, "overlayfs", _top_chain(amd64)) as root:
        assert (root / "platform").read_text().strip().startswith("amd64")


def test_retry_after_429(runtime_daemon, proxy, images):
    proxy.answer_429_once(retry_after=1)
    started = time.monotonic()

    async def go():
        async with runtime_daemon.client() as c:
            return await pull(c, f"{proxy.host}/library/busybox:latest")

    assert asyncio.run(go())["target"]["digest"] == images["library/busybox:latest"].digest
    assert time.monotonic() - started >= 0.9
    assert any(r.status == 429 for r in proxy.requests)


def test_namespaces_isolate(runtime_daemon, pyctr_env, registry):
    ref = f"{registry.host}/library/busybox:latest"
    pyctr(pyctr_env, "-n", "a", "images", "pull", ref, check=True)
    pyctr(pyctr_env, "namespaces", "create", "b", check=True)
    assert ref in pyctr(pyctr_env, "-n", "a", "images", "ls", check=True).stdout
    assert ref not in pyctr(pyctr_env, "-n", "b", "images", "ls", check=True).stdout
    assert pyctr(pyctr_env, "-n", "b", "content", "ls", "-q", check=True).stdout.strip() == ""
    names = pyctr(pyctr_env, "namespaces", "list", "-q", check=True).stdout.split()
    assert {"a", "b"} <= set(names)
    rm = pyctr(pyctr_env, "namespaces", "remove", "a")
    assert rm.returncode != 0 and "must be empty" in rm.stderr
    pyctr(pyctr_env, "namespaces", "remove", "b", check=True)
    pyctr(pyctr_env, "-n", "a", "images", "rm", ref, check=True)
    pyctr(pyctr_env, "namespaces", "remove", "a", check=True)


def test_plugins_list(runtime_daemon, pyctr_env):
    out = pyctr(pyctr_env, "plugins", "list", check=True).stdout
    rows = {tuple(line.split()[:3]) for line in out.splitlines()[1:]}
    for type_, id_ in [("io.pyengine.content.v1", "content"), ("io.pyengine.metadata.v1", "sqlite"),
                       ("io.pyengine.snapshotter.v1", "overlayfs"), ("io.pyengine.snapshotter.v1", "native"),
                       ("io.pyengine.event.v1", "exchange"), ("io.pyengine.differ.v1", "walking"),
                       ("io.pyengine.transfer.v1", "pull"), ("io.pyengine.gc.v1", "scheduler")]:
        assert (type_, id_, "ok") in rows, out


def test_image_removal_collects_content_and_snapshots(runtime_daemon, registry):
    ref = f"{registry.host}/library/whiteout:latest"

    async def go():
        async with runtime_daemon.client() as c:
            await pull(c, ref)
            assert await c.content() and await c.snapshots("overlayfs")
            await c.remove_image(ref)
            return await c.content(), await c.snapshots("overlayfs")

    content, snaps = asyncio.run(go())
    assert content == [] and snaps == []
    assert blob_files(runtime_daemon.root) == {}


def test_events_stream(runtime_daemon, registry):
    ref = f"{registry.host}/library/busybox:latest"

    async def go():
        async with runtime_daemon.client() as sub, runtime_daemon.client("evns") as c:
            stream = sub.events(topics=["/images/*", "/snapshot/commit", "/namespaces/create"],
                                namespaces=["evns"], announce=True)
            assert (await stream.__anext__())["status"] == "subscribed"
            await pull(c, ref)
            seen = []
            while not any(e["topic"] == "/images/create" for e in seen):
                seen.append(await asyncio.wait_for(stream.__anext__(), 10))
            await stream.aclose()
            return seen

    seen = asyncio.run(go())
    topics = [e["topic"] for e in seen]
    assert topics[0] == "/namespaces/create"
    assert "/snapshot/commit" in topics and topics[-1] == "/images/create"
    assert all(e["namespace"] == "evns" for e in seen)
    assert seen[-1]["event"]["name"] == ref


def test_bad_input_gets_clear_4xx(runtime_daemon, pyctr_env):
    addr = runtime_daemon.address
    bad_ref = pyctr(pyctr_env, "images", "pull", "Not/A:Valid:Ref")
    assert bad_ref.returncode != 0 and "invalid reference format" in bad_ref.stderr
    assert "Traceback" not in bad_ref.stderr

    async def go():
        out = {}
        out["json"] = await raw_request(addr, "POST", "/v1/images/pull", data=b"{not json",
                                        headers={"Content-Type": "application/json"})
        out["type"] = await raw_request(addr, "POST", "/v1/namespaces", data=json.dumps({"name": 5}).encode(),
                                        headers={"Content-Type": "application/json"})
        out["ref"] = await raw_request(addr, "POST", "/v1/images/pull", data=json.dumps({"ref": "::"}).encode(),
                                       headers={"Content-Type": "application/json"})
        out["ns"] = await raw_request(addr, "GET", "/v1/images", headers={"X-Pyengine-Namespace": "nosuch"})
        out["nsname"] = await raw_request(addr, "GET", "/v1/images", headers={"X-Pyengine-Namespace": "bad/ns"})
        out["digest"] = await raw_request(addr, "GET", "/v1/content/sha256:1234")
        out["unknown"] = await raw_request(addr, "GET", "/v1/content/sha256:" + "0" * 64)
        out["route"] = await raw_request(addr, "GET", "/v1/nope")
        out["snap"] = await raw_request(addr, "GET", "/v1/snapshots/nosuch")
        return out

    out = asyncio.run(go())
    expect = {"json": 400, "type": 400, "ref": 400, "ns": 404, "nsname": 400, "digest": 400, "unknown": 404,
              "route": 404, "snap": 404}
    for k, status in expect.items():
        code, body = out[k]
        assert code == status, (k, code, body)
        assert isinstance(body, dict) and body["error"]["message"], (k, body)
    openapi = asyncio.run(raw_request(addr, "GET", "/openapi.json"))
    assert openapi[0] == 200 and "/v1/images/pull" in openapi[1]["paths"]


def test_second_daemon_on_same_root_refuses(runtime_daemon):
    other = subprocess.run(
        [str(Path(__import__("sys").executable)), "-m", "runtime.daemon", "--root", runtime_daemon.root,
         "--state", runtime_daemon.state + "2", "--address", runtime_daemon.address + "2"],
        capture_output=True, text=True, timeout=30,
    )
    assert other.returncode != 0
    assert "another pyruntimed" in other.stderr
    assert runtime_daemon.stop() == 0


def test_unknown_namespace_removal_and_errors(runtime_daemon):
    async def go():
        async with runtime_daemon.client() as c:
            with pytest.raises(NotFound):
                await c.remove_namespace("ghost")
            await c.create_namespace("full")
            await c.create_lease("keep", namespace="full")
            with pytest.raises(FailedPrecondition):
                await c.remove_namespace("full")

    asyncio.run(go())
