"""Issue 11: pushes through pyruntimed and pyctr to a real registry with basic and token auth."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.client import FailedPrecondition, NotFound, Unauthenticated
from runtime.remotes.hosts import RegistryHostsConfig
from runtime.remotes.transport import RegistryTransport
from runtime.remotes.uploads import Uploads
from runtime.reference import parse
from runtime.oci import Descriptor
from runtime.transfer.push import CHUNK
from tests.fixtures.daemons import RuntimeDaemon
from tests.fixtures.images import big_image
from tests.fixtures.registry import Registry, access_log
from tests.fixtures.registry import push as push_image
from tests.integration.helpers import pull, pyctr, raw_request

BUSYBOX = "library/busybox:latest"


@pytest.fixture(scope="module", params=["basic", "token"])
def auth_registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    """A registry of this module's own (pushes change it), with htpasswd or token auth."""
    with Registry(auth=request.param) as reg:
        yield reg


def _creds(reg: Registry, password: str | None = None) -> dict[str, str]:
    user, pw = reg.credentials or ("", "")
    return {"username": user, "password": password or pw}


async def _push(d: RuntimeDaemon, name: str, ref: str, **kw: Any) -> list[dict[str, Any]]:
    async with d.client() as c:
        return [ev async for ev in c.push(name, ref, **kw)]


def _uploads(reg: Registry, repo: str) -> list[str]:
    """Blob writes the registry saw for `repo`: upload starts (mounts included), PATCHes and PUTs."""
    return [f"{e.method} {e.uri}" for e in access_log(reg)
            if e.uri.startswith(f"/v2/{repo}/blobs/uploads/") and e.method in ("POST", "PATCH", "PUT")
            and e.status < 400]


def test_push_then_pull_on_fresh_root(runtime_daemon, registry, auth_registry, images, tmp_path):
    image = images[BUSYBOX]
    source = f"{registry.host}/{BUSYBOX}"
    asyncio.run(_pull_plain(runtime_daemon, source))
    repo = f"team{secrets.token_hex(3)}/busybox"
    target = f"{auth_registry.host}/{repo}:v1"

    events = asyncio.run(_push(runtime_daemon, source, target, credentials=_creds(auth_registry)))
    assert events[0]["status"] == "pushing" and events[0]["repository"] == f"{auth_registry.host}/{repo}"
    final = events[-1]
    assert final["status"] == "complete" and final["digest"] == image.digest
    by_blob = {}
    for ev in events[1:-1]:
        by_blob.setdefault(ev["digest"], []).append(ev["status"])
    for layer in image.layer_digests:
        assert by_blob[layer][0] in ("checking", "waiting") and by_blob[layer][-1] == "done"
        assert "uploading" in by_blob[layer]
    assert by_blob[image.digest] == ["done"]

    (tmp_path / "fresh").mkdir()
    fresh = RuntimeDaemon(str(tmp_path / "fresh"))
    fresh.start()
    try:
        async def pull_back() -> dict[str, Any]:
            async with fresh.client() as c:
                return await pull(c, target, credentials=_creds(auth_registry))

        assert asyncio.run(pull_back())["target"]["digest"] == image.digest
    finally:
        fresh.cleanup()

    # Everything is there now: a second push asks, and sends no blob.
    before = len(_uploads(auth_registry, repo))
    again = asyncio.run(_push(runtime_daemon, source, target, credentials=_creds(auth_registry)))
    assert {ev["status"] for ev in again if ev.get("kind") in ("layer", "config")} <= {"waiting", "checking", "exists"}
    assert len(_uploads(auth_registry, repo)) == before

    # Another repository of the same registry: the blobs are mounted from the first.
    other = f"other{secrets.token_hex(3)}/busybox"
    mounted = asyncio.run(_push(runtime_daemon, source, f"{auth_registry.host}/{other}:v1",
                                credentials=_creds(auth_registry)))
    froms = {ev["digest"]: ev["from"] for ev in mounted if ev["status"] == "mounted"}
    assert set(froms) == {*image.layer_digests, image.config_digest}
    assert set(froms.values()) == {repo}
    assert not [u for u in _uploads(auth_registry, other) if not u.startswith("POST")]


async def _pull_plain(d: RuntimeDaemon, ref: str) -> None:
    async with d.client() as c:
        await pull(c, ref)


def test_push_refusals(runtime_daemon, registry, auth_registry):
    source = f"{registry.host}/{BUSYBOX}"
    asyncio.run(_pull_plain(runtime_daemon, source))
    target = f"{auth_registry.host}/refused/busybox:v1"
    with pytest.raises(Unauthenticated) as e:
        asyncio.run(_push(runtime_daemon, source, target, credentials=_creds(auth_registry, "wrong")))
    assert "authentication" in e.value.message
    with pytest.raises(NotFound):
        asyncio.run(_push(runtime_daemon, "nothing/here:v1", target, credentials=_creds(auth_registry)))


def test_push_index_needs_every_manifest(runtime_daemon, registry, auth_registry, images):
    index = images["library/multi:latest"]
    source = f"{registry.host}/library/multi:latest"

    async def go() -> None:
        async with runtime_daemon.client() as c:
            await pull(c, source, platform="linux/amd64")

    asyncio.run(go())
    target = f"{auth_registry.host}/multi{secrets.token_hex(3)}/multi:v1"
    with pytest.raises(FailedPrecondition) as e:
        asyncio.run(_push(runtime_daemon, source, target, credentials=_creds(auth_registry)))
    assert "not present locally" in e.value.message
    events = asyncio.run(_push(runtime_daemon, source, target, credentials=_creds(auth_registry),
                               platform="linux/amd64"))
    assert events[-1]["digest"] == index.platform_image("amd64").digest

    # With every platform here, the index goes with all its manifests; the layer they share goes once.
    async def other_platform() -> None:
        async with runtime_daemon.client() as c:
            await pull(c, source, platform="linux/arm64", unpack=False)

    asyncio.run(other_platform())
    whole = f"{auth_registry.host}/multi{secrets.token_hex(3)}/multi:v1"
    events = asyncio.run(_push(runtime_daemon, source, whole, credentials=_creds(auth_registry)))
    assert events[-1]["digest"] == index.digest
    done = [ev["digest"] for ev in events if ev.get("status") == "done"]
    assert len(done) == len(set(done))
    assert {c["digest"] for c in index.child_manifests()} | {index.digest} <= set(done)


def test_registry_login(runtime_daemon, auth_registry):
    async def login(password: str | None) -> Any:
        async with runtime_daemon.client() as c:
            return await c.registry_login(auth_registry.host, _creds(auth_registry, password))

    good = asyncio.run(login(None))
    assert good.ok and good.url == f"http://{auth_registry.host}/v2/"
    assert good.scheme == ("bearer" if auth_registry.auth == "token" else "basic")
    bad = asyncio.run(login("wrong"))
    assert not bad.ok and bad.status == 401


def test_pyctr_images_push(runtime_daemon, pyctr_env, registry, auth_registry, images):
    user, password = auth_registry.credentials or ("", "")
    source = f"{registry.host}/{BUSYBOX}"
    pyctr(pyctr_env, "images", "pull", source, check=True)
    target = f"{auth_registry.host}/ctr{secrets.token_hex(3)}/busybox:v1"
    out = pyctr(pyctr_env, "images", "push", "-u", f"{user}:{password}", target, source, check=True)
    assert out.stdout.splitlines()[-1] == f"{target}: {images[BUSYBOX].digest}"
    bad = pyctr(pyctr_env, "images", "push", "-u", f"{user}:wrong", target, source)
    assert bad.returncode == 1 and "authentication" in bad.stderr and "Traceback" not in bad.stderr


def test_chunked_upload(registry):
    """Blobs over the monolithic limit go in PATCHed ranges; the registry assembles and checks them."""
    data = os.urandom(3 << 20)
    desc = Descriptor(mediaType="application/octet-stream",
                      digest="sha256:" + __import__("hashlib").sha256(data).hexdigest(), size=len(data))
    ref = parse(f"{registry.host}/chunks{secrets.token_hex(3)}/blob:v1")
    offsets: list[int] = []

    async def go() -> bool:
        config = RegistryHostsConfig()
        transport = RegistryTransport(config)
        try:
            uploads = Uploads(transport, config.endpoints_for(ref.domain)[-1], ref, None)
            location = await uploads.start(desc.digest)
            assert location is not None

            async def chunks() -> Any:
                for i in range(0, len(data), 1 << 20):
                    yield data[i:i + (1 << 20)]

            await uploads.put_chunks(location, desc, chunks(), offsets.append)
            return await uploads.has_blob(desc.digest)
        finally:
            await transport.close()

    assert asyncio.run(go())
    assert offsets == [1 << 20, 2 << 20, 3 << 20]


def test_large_layer_goes_in_chunks(runtime_daemon, auth_registry):
    """A layer over the monolithic limit is PATCHed in ranges of CHUNK, with progress per range."""
    if auth_registry.auth != "basic":
        pytest.skip("one auth flow is enough for the chunking")
    image = big_image(total_mb=20, layers=1)
    big = next(d for d in image.layer_digests if len(image.blobs[d]) > 8 << 20)
    with Registry() as source:
        push_image(source, "library/big", "latest", image)
        ref = f"{source.host}/library/big:latest"
        asyncio.run(_pull_plain(runtime_daemon, ref))
        repo = f"big{secrets.token_hex(3)}/big"
        events = asyncio.run(_push(runtime_daemon, ref, f"{auth_registry.host}/{repo}:v1",
                                   credentials=_creds(auth_registry)))
    assert events[-1]["digest"] == image.digest
    size = len(image.blobs[big])
    offsets = [ev["current"] for ev in events if ev["digest"] == big and ev["status"] == "uploading"]
    assert offsets == [0, *range(CHUNK, size, CHUNK), size]
    patches = [w for w in _uploads(auth_registry, repo) if w.startswith("PATCH")]
    assert len(patches) == -(-size // CHUNK)


def test_push_refuses_mirrors(runtime_daemon, registry):
    """Mirrors serve pulls: a push or login that names some is refused, not quietly sent elsewhere."""
    mirrors = {"mirrors": {"docker.io": [f"http://{registry.host}"]}}
    for path, body in (("/v1/images/push", {"name": "x", "hosts": mirrors}),
                       ("/v1/registry/login", {"server": registry.host, "credentials": {}, "hosts": mirrors})):
        status, answer = asyncio.run(raw_request(runtime_daemon.address, "POST", path, data=json.dumps(body).encode(),
                                                 headers={"Content-Type": "application/json"}))
        assert status == 400 and "hosts.mirrors" in answer["error"]["message"]


@pytest.mark.parametrize("server", ["", "https://x/", "a b", "host:port"])
def test_login_to_something_that_is_no_registry_host_is_a_400(runtime_daemon: RuntimeDaemon, server: str) -> None:
    body = {"server": server, "credentials": {"username": "u", "password": "p"}}
    status, answer = asyncio.run(raw_request(runtime_daemon.address, "POST", "/v1/registry/login",
                                             data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"}))
    assert status == 400, answer
    assert "not a registry host" in answer["error"]["message"]
