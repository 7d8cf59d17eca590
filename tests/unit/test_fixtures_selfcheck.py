"""Self-check of the registry test fixtures (tests/fixtures/).

The fixtures come from tests/conftest.py's pytest_plugins:
    .venv/bin/pytest tests/unit/test_fixtures_selfcheck.py
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import re
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import zstandard

from tests.fixtures import images as fx
from tests.fixtures.proxy import Proxy
from tests.fixtures.registry import Registry, blob_get_counts, push
from tests.fixtures.seed import main as seed_main
from tests.fixtures.tokenserver import TokenServer

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ACCEPT = ", ".join(fx.MANIFEST_MEDIA_TYPES + fx.INDEX_MEDIA_TYPES)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _decompress(data: bytes) -> bytes:
    if data.startswith(ZSTD_MAGIC):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return gzip.decompress(data)


def _layer_members(image: fx.Image, digest: str) -> list[tarfile.TarInfo]:
    return tarfile.open(fileobj=io.BytesIO(_decompress(image.blobs[digest]))).getmembers()


# -- images -------------------------------------------------------------------


def test_images_are_deterministic_and_self_consistent(images: dict[str, fx.Image]) -> None:
    assert fx.busybox_image().digest == images["library/busybox:latest"].digest
    for ref, image in images.items():
        for digest, data in image.blobs.items():
            assert fx.sha256_digest(data) == digest, ref
    for ref in ("library/busybox:latest", "library/busybox:docker", "library/busybox:zstd"):
        image = images[ref]
        (layer,) = image.layer_digests
        raw = _decompress(image.blobs[layer])
        assert image.config_json["rootfs"]["diff_ids"] == [fx.sha256_digest(raw)]
        names = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(raw))}
        assert names["bin/busybox"].mode == 0o755 and names["bin/sh"].linkname == "busybox"
        assert names["tmp"].mode == 0o1777
    assert images["library/busybox:docker"].media_type == fx.DOCKER_MANIFEST
    assert images["library/busybox:zstd"].manifest_json["layers"][0]["mediaType"] == fx.OCI_LAYER_ZSTD


def test_whiteout_and_hostile_layers(images: dict[str, fx.Image]) -> None:
    whiteout = images["library/whiteout:latest"]
    assert len(whiteout.layer_digests) >= 3
    delete_layer = {m.name for m in _layer_members(whiteout, whiteout.layer_digests[2])}
    assert {"data/.wh.gone.txt", ".wh.dir-to-delete", "opaque/.wh..wh..opq", "opaque/new.txt"} <= delete_layer
    for name, entry in fx.HOSTILE_ENTRY.items():
        image = images[f"hostile/{name}:latest"]
        members = _layer_members(image, image.layer_digests[0])
        assert members[-1].name == entry and "escape" in entry
        assert not any("escape" in m.name for m in members[:-1] if m.name != entry)
    device = _layer_members(images["hostile/device:latest"], images["hostile/device:latest"].layer_digests[0])
    assert device[-1].ischr()


def test_multiplatform_index_is_distinguishable(images: dict[str, fx.Image]) -> None:
    index = images["library/multi:latest"]
    assert index.media_type == fx.OCI_INDEX
    for arch in ("amd64", "arm64"):
        child = index.platform_image(arch)
        assert child.config_json["architecture"] == arch
        marker = _layer_members(child, child.layer_digests[-1])
        assert [m.name for m in marker] == ["platform"]


def test_big_image_tiny_variant_is_cached(tmp_path: Path) -> None:
    first = fx.big_image(total_mb=2, layers=5, cache_dir=tmp_path)
    again = fx.big_image(total_mb=2, layers=5, cache_dir=tmp_path)
    assert again.digest == first.digest and again.blobs == first.blobs
    assert len(first.layer_digests) == 6
    assert sum(len(first.blobs[d]) for d in first.layer_digests[1:]) >= 2 * fx.MIB  # incompressible


# -- registry round trips -------------------------------------------------------


@pytest.mark.parametrize("ref", ["library/busybox:latest", "library/busybox:docker", "library/busybox:zstd",
                                 "library/whiteout:latest", "library/multi:latest", "hostile/dotdot:latest"])
def test_pull_back_identical_direct_and_via_proxy(
    registry: Registry, proxy: Proxy, images: dict[str, fx.Image], ref: str
) -> None:
    image = images[ref]
    repo, _, tag = ref.rpartition(":")
    for base in (registry.url, proxy.url):
        status, headers, body = _get(f"{base}/v2/{repo}/manifests/{tag}", {"Accept": ACCEPT})
        assert status == 200
        assert body == image.manifest
        assert headers["Docker-Content-Digest"] == image.digest
        assert headers["Content-Type"] == image.media_type
        for digest in image.blobs:
            kind = "manifests" if digest in {d["digest"] for d in image.child_manifests()} else "blobs"
            status, _, data = _get(f"{base}/v2/{repo}/{kind}/{digest}", {"Accept": ACCEPT})
            assert status == 200 and hashlib.sha256(data).hexdigest() == digest.removeprefix("sha256:")


def test_blob_get_counts_and_proxy_counters(registry: Registry, proxy: Proxy, images: dict[str, fx.Image]) -> None:
    digest = images["library/whiteout:latest"].layer_digests[1]
    url = f"{proxy.url}/v2/library/whiteout/blobs/{digest}"
    before = blob_get_counts(registry).get(digest, 0)
    for _ in range(2):
        assert _get(url)[0] == 200
    urllib.request.urlopen(urllib.request.Request(url, method="HEAD")).close()
    assert blob_get_counts(registry).get(digest, 0) - before == 2
    assert proxy.blob_gets == {digest: 2}
    assert proxy.total_blob_bytes == 2 * len(images["library/whiteout:latest"].blobs[digest])


def test_range_request_passes_through_proxy(proxy: Proxy, images: dict[str, fx.Image]) -> None:
    image = images["library/busybox:latest"]
    digest = image.layer_digests[0]
    status, headers, body = _get(f"{proxy.url}/v2/library/busybox/blobs/{digest}", {"Range": "bytes=1000-"})
    assert status == 206 and body == image.blobs[digest][1000:]
    assert headers["Content-Range"] == f"bytes 1000-{len(image.blobs[digest]) - 1}/{len(image.blobs[digest])}"


# -- proxy faults ---------------------------------------------------------------------


def test_proxy_corruption_changes_digest_once(proxy: Proxy, images: dict[str, fx.Image]) -> None:
    digest = images["library/busybox:latest"].layer_digests[0]
    url = f"{proxy.url}/v2/library/busybox/blobs/{digest}"
    proxy.corrupt_next_blob(digest)
    _, _, bad = _get(url)
    _, _, good = _get(url)
    assert len(bad) == len(good)
    assert fx.sha256_digest(bad) != digest and fx.sha256_digest(good) == digest
    proxy.corrupt_blobs = True
    assert fx.sha256_digest(_get(url)[2]) != digest


def test_proxy_429_once_then_ok(proxy: Proxy) -> None:
    url = f"{proxy.url}/v2/library/busybox/manifests/latest"
    proxy.answer_429_once(retry_after=1)
    status, headers, _ = _get(url, {"Accept": ACCEPT})
    assert status == 429 and headers["Retry-After"] == "1"
    assert _get(url, {"Accept": ACCEPT})[0] == 200
    assert [r.status for r in proxy.requests_to("/manifests/")] == [429, 200]
    proxy.reset()
    assert proxy.requests == [] and proxy.blob_gets == {}


def test_proxy_cut_truncates_body(proxy: Proxy, images: dict[str, fx.Image]) -> None:
    digest = images["library/busybox:latest"].layer_digests[0]
    proxy.cut_blob_after(4096)
    with pytest.raises(http.client.IncompleteRead) as info:
        urllib.request.urlopen(f"{proxy.url}/v2/library/busybox/blobs/{digest}").read()
    assert len(info.value.partial) == 4096
    assert proxy.blob_bytes_sent[digest] == 4096


async def test_proxy_with_aiohttp_keepalive_and_cut(proxy: Proxy, images: dict[str, fx.Image]) -> None:
    image = images["library/busybox:latest"]
    digest = image.layer_digests[0]
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # second round reuses the keep-alive connection
            async with session.get(f"{proxy.url}/v2/library/busybox/blobs/{digest}") as resp:
                assert fx.sha256_digest(await resp.read()) == digest
        proxy.cut_blob_after(10_000)
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.get(f"{proxy.url}/v2/library/busybox/blobs/{digest}") as resp:
                await resp.read()


# -- auth -------------------------------------------------------------------------------


def test_basic_auth(basic_registry: Registry) -> None:
    user, password = basic_registry.credentials or ("", "")
    url = f"{basic_registry.url}/v2/library/busybox/manifests/latest"
    status, headers, _ = _get(url, {"Accept": ACCEPT})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic ")
    assert _get(url, {"Accept": ACCEPT, "Authorization": _basic(user, "wrong")})[0] == 401
    assert _get(url, {"Accept": ACCEPT, "Authorization": _basic(user, password)})[0] == 200


def test_token_flow_end_to_end(token_registry: Registry, token_server: TokenServer) -> None:
    user, password = token_registry.credentials or ("", "")
    url = f"{token_registry.url}/v2/library/busybox/manifests/latest"
    status, headers, _ = _get(url, {"Accept": ACCEPT})
    assert status == 401
    scheme, _, params = headers["WWW-Authenticate"].partition(" ")
    assert scheme == "Bearer"
    challenge = dict(re.findall(r'(\w+)="([^"]*)"', params))
    assert challenge["scope"] == "repository:library/busybox:pull"
    token_url = f"{challenge['realm']}?service={challenge['service']}&scope={challenge['scope']}"

    served = token_server.requests_served
    assert _get(token_url, {"Authorization": _basic(user, "wrong")})[0] == 401
    status, _, body = _get(token_url, {"Authorization": _basic(user, password)})
    assert status == 200 and token_server.requests_served == served + 1
    token = json.loads(body)["token"]
    assert _get(url, {"Accept": ACCEPT, "Authorization": f"Bearer {token}"})[0] == 200

    # The registry really checks the grant and the signature.
    other_repo = token_server.make_token(["repository:library/other:pull"])
    assert _get(url, {"Accept": ACCEPT, "Authorization": f"Bearer {other_repo}"})[0] == 401
    with TokenServer() as stranger:
        forged = stranger.make_token([challenge["scope"]])
    assert _get(url, {"Accept": ACCEPT, "Authorization": f"Bearer {forged}"})[0] == 401


def test_push_with_auth_and_seed_cli(
    basic_registry: Registry, token_registry: Registry, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    image = fx.hostile_images()["absolute"]
    for reg in (basic_registry, token_registry):
        assert push(reg, "selfcheck/pushed", "v1", image) == image.digest
    assert seed_main(["--registry", registry.host, "--repo", "selfcheck/seeded", "--tag", "t"]) == 0
    assert fx.busybox_image().digest in capsys.readouterr().out
    status, _, body = _get(f"{registry.url}/v2/selfcheck/seeded/manifests/t", {"Accept": ACCEPT})
    assert status == 200 and body == fx.busybox_image().manifest
