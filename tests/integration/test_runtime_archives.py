"""The runtime's image archives: POST /v1/images/import and /export through the client and pyctr."""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.client import Client, DataLoss, InvalidArgument, NotFound
from tests.fixtures.archives import legacy_archive, oci_layout, tar_of
from tests.fixtures.daemons import RuntimeDaemon
from tests.fixtures.images import busybox_image, multiplatform_index
from tests.integration.helpers import pyctr


async def _chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _run(runtime_daemon: RuntimeDaemon, work):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with runtime_daemon.client() as c:
            return await work(c)

    return asyncio.run(go())


def test_pyctr_import_export_round_trip(runtime_daemon, pyctr_env, tmp_path: Path):
    index = multiplatform_index()
    archive = tmp_path / "multi.tar"
    archive.write_bytes(oci_layout(index, ["docker.io/library/multi:1"]))
    out = pyctr(pyctr_env, "images", "import", str(archive), check=True)
    assert out.stdout == f"docker.io/library/multi:1: {index.digest}\n"
    names = pyctr(pyctr_env, "images", "ls", "-q", check=True).stdout.split()
    assert names == ["docker.io/library/multi:1"]
    arm = json.loads(index.blobs[index.child_manifests()[1]["digest"]])

    async def held(c: Client) -> set[str]:
        return {i.digest for i in await c.content()}

    # Only this host's manifest of the index is kept, unless every platform is asked for.
    assert arm["config"]["digest"] not in _run(runtime_daemon, held)
    pyctr(pyctr_env, "images", "import", "--all-platforms", str(archive), check=True)
    assert arm["config"]["digest"] in _run(runtime_daemon, held)

    exported = tmp_path / "out.tar"
    pyctr(pyctr_env, "images", "export", "--format", "oci", str(exported), "multi:1", check=True)
    with tarfile.open(exported) as tar:
        assert "manifest.json" not in tar.getnames()
        entry = json.load(tar.extractfile("index.json"))["manifests"][0]  # type: ignore[arg-type]
    assert entry["annotations"]["io.containerd.image.name"] == "docker.io/library/multi:1"
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"  # this platform's manifest

    async def again(c: Client):  # type: ignore[no-untyped-def]
        return await c.import_images(_chunks(exported.read_bytes()), namespace="other")

    assert _run(runtime_daemon, again)[0].names == ["docker.io/library/multi:1"]


def test_failed_imports_leave_nothing(runtime_daemon):
    image = busybox_image()
    good = legacy_archive(image, ["x:1"])

    async def work(c: Client) -> None:
        await c.create_namespace("empty")
        with pytest.raises(InvalidArgument, match="unexpected EOF"):
            await c.import_images(_chunks(good[:len(good) // 2]), namespace="empty")
        with pytest.raises(InvalidArgument, match="needs a lease"):
            await c.import_images(_chunks(good), records=False, namespace="empty")
        assert await c.content(namespace="empty") == []
        assert await c.images(namespace="empty") == []
        assert await c.snapshots("overlayfs", namespace="empty") == []
        assert await c.ingests() == []

    _run(runtime_daemon, work)


def test_platform_filters_import_and_export(runtime_daemon):
    arm = busybox_image(arch="arm64")

    async def work(c: Client) -> None:
        assert await c.import_images(_chunks(legacy_archive(arm, ["arm:1"])), platform="linux/amd64") == []
        [loaded] = await c.import_images(_chunks(legacy_archive(arm, ["arm:1"])), platform="linux/arm64",
                                         unpack=False)
        assert loaded.names == ["docker.io/library/arm:1"]
        with pytest.raises(NotFound, match="does not provide the specified platform"):
            async with c.export_images(["arm:1"], platform="linux/amd64"):
                pass
        async with c.export_images(["arm:1"], platform="linux/arm64") as chunks:
            data = b"".join([chunk async for chunk in chunks])
        manifest = json.load(tarfile.open(fileobj=io.BytesIO(data)).extractfile("manifest.json"))  # type: ignore
        assert manifest[0]["RepoTags"] == ["arm:1"]

    _run(runtime_daemon, work)


def _manifest_first_archive(wrong_diff_id: bool) -> tuple[bytes, int, str]:
    """A docker-archive laid out as pyruntimed exports it (manifest.json, config, then layers bottom up)
    with two gzip layers, the second 2 MiB; the offset 1.2 MiB into that layer's data, past the reader's
    1 MiB gathering; the first layer's diff_id. `wrong_diff_id`: the config lies about the second layer."""
    raws = [tar_of([(f"f{i}", os.urandom(size))]) for i, size in enumerate((65536, 2 << 20))]
    layers = [gzip.compress(raw, compresslevel=1) for raw in raws]
    diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in raws]
    if wrong_diff_id:
        diff_ids[1] = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()

    def path(data: bytes) -> str:
        return "blobs/sha256/" + hashlib.sha256(data).hexdigest()

    manifest = json.dumps([{"Config": path(config), "RepoTags": ["early:1"],
                            "Layers": [path(layer) for layer in layers]}]).encode()
    buf = io.BytesIO()
    split = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("manifest.json", manifest), (path(config), config)] + [(path(x), x) for x in layers]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            if data is layers[0]:
                split = buf.tell() + 512 + (6 << 20) // 5
    return buf.getvalue(), split, diff_ids[0]


@pytest.mark.parametrize("case", ["good", "wrong_diff_id", "truncated"])
def test_layers_are_applied_while_the_archive_streams_in(runtime_daemon, case: str):
    """The first layer becomes a snapshot before the archive has all arrived; a layer whose content is not
    its config's diff_id, or an archive cut inside a layer being applied, still fails the import, and a
    failed import leaves nothing, early snapshots included."""
    data, split, first_chain = _manifest_first_archive(case == "wrong_diff_id")
    if case == "truncated":
        data = data[:split + 65536]
    namespace = f"early-{case}".replace("_", "-")

    async def work(c: Client) -> None:
        await c.create_namespace(namespace)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in _chunks(data[:split]):
                yield chunk
            # The rest waits until the first layer is there: it can only have been applied early.
            for _ in range(600):
                if any(s["name"] == first_chain for s in await c.snapshots("overlayfs", namespace=namespace)):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the first layer was not applied while the archive streamed in")
            async for chunk in _chunks(data[split:]):
                yield chunk

        if case != "good":
            error, match = (DataLoss, "layer 1 .*diff_id") if case == "wrong_diff_id" else (InvalidArgument, "EOF")
            with pytest.raises(error, match=match):
                await c.import_images(body(), namespace=namespace)
            assert await c.content(namespace=namespace) == []
            assert await c.images(namespace=namespace) == []
            assert await c.snapshots("overlayfs", namespace=namespace) == []
            return
        [loaded] = await c.import_images(body(), namespace=namespace)
        assert loaded.names == ["docker.io/library/early:1"]
        committed = [s for s in await c.snapshots("overlayfs", namespace=namespace) if s["kind"] == "committed"]
        assert len(committed) == 2

    _run(runtime_daemon, work)
