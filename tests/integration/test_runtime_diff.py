"""Diff service Compare on both snapshotters, and images made from its layers through the ingest API.

The flow `docker commit` will take: a container changes files, Compare makes its layer, the config
and manifest are written through the ingest API, an image record points at them, unpack makes
its snapshots, and a container of the new image sees exactly the changes.
"""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest
import zstandard

from runtime.client import Client, InvalidArgument
from runtime.client.diff import LayerDiff
from tests.integration.helpers import chain_id, pull

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
TAR = "application/vnd.oci.image.layer.v1.tar"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
EMPTY_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

FIRST = ("mkdir -p /d/sub && echo a > /d/a && echo b > /d/b && echo k > /d/sub/k && busybox ln /d/a /d/hard"
         " && busybox ln -s a /d/link && busybox mkfifo /d/fifo && echo m > /etc/motd && rm /bin/vi"
         " && rm /bin/wget && mkdir /bin/wget && rm -rf /home && echo f > /home")
FIRST_SEEN = ('test "$(cat /d/a /d/hard /d/link /d/sub/k)" = "a\na\na\nk" && test -p /d/fifo && test ! -e /bin/vi'
              ' && test -d /bin/wget && test "$(cat /home)" = f && test "$(cat /etc/motd)" = m')
SECOND = "rm -rf /d && mkdir /d && echo c > /d/c && rm /etc/motd"
SECOND_SEEN = 'test "$(ls /d)" = c && test ! -e /etc/motd && test "$(cat /home)" = f && test ! -e /bin/vi'


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def layer_tar(c: Client, layer: LayerDiff) -> tuple[bytes, tarfile.TarFile]:
    blob = await c.read_content(layer.descriptor.digest)
    assert sha(blob) == layer.descriptor.digest and len(blob) == layer.descriptor.size
    media = layer.descriptor.mediaType
    raw = blob if media == TAR else zstandard.ZstdDecompressor().decompressobj().decompress(blob) \
        if media == ZSTD else gzip.decompress(blob)
    assert sha(raw) == layer.diff_id
    info = await c.content_info(layer.descriptor.digest)
    assert info.labels["containerd.io/uncompressed"] == layer.diff_id
    return raw, tarfile.open(fileobj=io.BytesIO(raw))


async def run(c: Client, cid: str, image: str, snapshotter: str, script: str) -> None:
    await c.create_container(cid, image, {"args": ["sh", "-c", script]}, snapshotter=snapshotter)
    await c.create_task(cid)
    await c.start_task(cid)
    assert (await c.wait_task(cid)).exit_status == 0
    await c.delete_task(cid)


async def make_image(c: Client, name: str, base: str, layer: LayerDiff, lease: str, snapshotter: str) -> None:
    """base's config and manifest plus one layer, written through the ingest API."""
    base_manifest = json.loads(await c.read_content((await c.image(base)).target.digest))
    config = json.loads(await c.read_content(base_manifest["config"]["digest"]))
    config["rootfs"]["diff_ids"].append(layer.diff_id)
    config_bytes = json.dumps(config).encode()
    config_info = await c.write_content(f"config-{name}", config_bytes, lease=lease)
    layers = base_manifest["layers"] + [layer.descriptor.model_dump()]
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_info.digest, "size": len(config_bytes)},
                "layers": layers}
    manifest_bytes = json.dumps(manifest).encode()
    refs = [("content", config_info.digest)] + [("content", x["digest"]) for x in layers]
    info = await c.write_content(f"manifest-{name}", manifest_bytes, refs=refs, lease=lease)
    await c.put_image(name, {"mediaType": OCI_MANIFEST, "digest": info.digest, "size": info.size})
    unpacked = await c.unpack_image(name, snapshotter)
    assert unpacked.chain_id == chain_id(config["rootfs"]["diff_ids"]) and unpacked.unpacked == 1
    # Unpacking again finds everything there.
    assert (await c.unpack_image(name, snapshotter)).unpacked == 0


@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
def test_compare_layers_commit_into_runnable_images(runtime_daemon, registry, snapshotter):
    if snapshotter == "overlayfs" and not os.path.isdir("/sys/module/overlay"):
        pytest.skip("no overlayfs here")

    async def go() -> None:
        async with runtime_daemon.client() as c:
            ref = f"{registry.host}/library/busybox:latest"
            await pull(c, ref, plain_http=True, snapshotter=snapshotter)
            lease = (await c.create_lease())["id"]

            await run(c, "c1", ref, snapshotter, FIRST)
            first = await c.compare(snapshotter, "c1", lease=lease)
            assert first.descriptor.mediaType == "application/vnd.oci.image.layer.v1.tar+gzip"
            raw, tar = await layer_tar(c, first)
            members = {m.name: m for m in tar.getmembers()}
            names = list(members)
            for want in ("d", "d/a", "d/b", "d/sub", "d/sub/k", "etc", "etc/motd", "bin/.wh.vi", "bin/wget", "home"):
                assert want in members, (want, names)
            # Directories are named with a trailing slash, as Docker's (tarfile strips it when reading).
            assert b"d/sub/\0" in raw and b"bin/wget/\0" in raw
            assert all(not n.startswith("/") for n in names)
            assert names.index("d") < names.index("d/a") < names.index("d/sub") < names.index("d/sub/k")
            assert members["d/hard"].islnk() and members["d/hard"].linkname == "d/a"
            assert members["d/link"].issym() and members["d/link"].linkname == "a"
            assert members["d/fifo"].isfifo()
            # The mount points runc made for the spec are not the container's changes.
            assert not {"etc/hostname", "etc/hosts", "etc/resolv.conf", "proc", "dev"} & set(names)
            await make_image(c, "test/first:1", ref, first, lease, snapshotter)
            await run(c, "c2", "test/first:1", snapshotter, FIRST_SEEN)

            # A running container: the changes come from an exec while its task runs.
            await c.create_container("c3", "test/first:1", {"args": ["sleep", "600"]}, snapshotter=snapshotter)
            await c.create_task("c3")
            await c.start_task("c3")
            await c.add_exec("c3", "e1", ["sh", "-c", SECOND])
            await c.start_exec("c3", "e1")
            assert (await c.wait_task("c3", exec_id="e1")).exit_status == 0
            second = await c.compare(snapshotter, "c3", lease=lease)
            _, tar = await layer_tar(c, second)
            names = tar.getnames()
            assert {"d", "d/c", "etc/.wh.motd"} <= set(names) and "d/a" not in names, names
            if snapshotter == "overlayfs":
                assert "d/.wh..wh..opq" in names
            else:
                assert {"d/.wh.a", "d/.wh.sub"} <= set(names)
            # The same tar, whatever the compression.
            for media in (TAR, ZSTD):
                other = await c.compare(snapshotter, "c3", media_type=media, lease=lease)
                await layer_tar(c, other)
                assert other.diff_id == second.diff_id
            with pytest.raises(InvalidArgument, match="unsupported layer media type"):
                await c.compare(snapshotter, "c3", media_type="application/x-bzip2", lease=lease)
            # Over another parent (the base image's, below the first layer) both trees are walked: the
            # running container's overlay is read through a read-only mount of its layers.
            base = chain_id(json.loads(await c.read_content(json.loads(await c.read_content(
                (await c.image(ref)).target.digest))["config"]["digest"]))["rootfs"]["diff_ids"])
            _, tar = await layer_tar(c, await c.compare(snapshotter, "c3", parent=base, lease=lease))
            names = tar.getnames()
            assert {"d/c", "home", "bin/.wh.vi", "bin/wget"} <= set(names), names
            assert not {"etc/motd", "etc/.wh.motd", "d/a", "etc/hostname"} & set(names), names
            await c.delete_task("c3", force=True)

            await make_image(c, "test/second:1", "test/first:1", second, lease, snapshotter)
            await run(c, "c4", "test/second:1", snapshotter, SECOND_SEEN)

            # A committed snapshot compares too: the first image's top layer is the first layer again.
            top = chain_id(json.loads(await c.read_content(json.loads(await c.read_content(
                (await c.image("test/first:1")).target.digest))["config"]["digest"]))["rootfs"]["diff_ids"])
            again = await c.compare(snapshotter, top, lease=lease)
            raw_first, _ = await layer_tar(c, first)
            raw_again, _ = await layer_tar(c, again)
            assert sorted(tarfile.open(fileobj=io.BytesIO(raw_again)).getnames()) == \
                sorted(tarfile.open(fileobj=io.BytesIO(raw_first)).getnames())

            # A running container that changed nothing: runc's mount points and what overlayfs copied up
            # for them are not changes, so its layer is Docker's empty layer.
            await c.create_container("c5", ref, {"args": ["sleep", "600"]}, snapshotter=snapshotter)
            await c.create_task("c5")
            await c.start_task("c5")
            assert (await c.compare(snapshotter, "c5", media_type=TAR, lease=lease)).diff_id == EMPTY_DIFF_ID
            # Against no parent, the whole tree is the layer.
            _, whole = await layer_tar(c, await c.compare(snapshotter, "c5", parent="", lease=lease))
            assert {"bin/busybox", "etc/passwd"} <= set(whole.getnames())
            await c.delete_task("c5", force=True)

            for cid in ("c1", "c2", "c3", "c4", "c5"):
                await c.remove_container(cid)
            for name in ("test/second:1", "test/first:1", ref):
                await c.remove_image(name)
            await c.remove_lease(lease)
            await c.gc()
            assert await c.snapshots(snapshotter) == []

    asyncio.run(go())


def test_compare_commit_makes_the_layer_the_chain_snapshot(runtime_daemon, registry):
    """commit=True: a stopped container's snapshot becomes the layer's chainID snapshot, without runc's mount
    points, and its key is prepared again on top; where that is not exact or safe, nothing is committed."""
    if not os.path.isdir("/sys/module/overlay"):
        pytest.skip("no overlayfs here")

    async def go() -> None:
        async with runtime_daemon.client() as c:
            ref = f"{registry.host}/library/busybox:latest"
            await pull(c, ref, plain_http=True, snapshotter="overlayfs")
            lease = (await c.create_lease())["id"]
            base = chain_id(json.loads(await c.read_content(json.loads(await c.read_content(
                (await c.image(ref)).target.digest))["config"]["digest"]))["rootfs"]["diff_ids"])

            # Running: its upper dir is mounted, so it is only compared.
            await c.create_container("k1", ref, {"args": ["sleep", "600"]}, snapshotter="overlayfs")
            await c.create_task("k1")
            await c.start_task("k1")
            assert (await c.compare("overlayfs", "k1", commit=True, lease=lease)).committed is None
            await c.delete_task("k1", force=True)

            await run(c, "k2", ref, "overlayfs", FIRST)
            # Without a lease nothing would hold the new snapshot until an image names it.
            assert (await c.compare("overlayfs", "k2", commit=True)).committed is None
            layer = await c.compare("overlayfs", "k2", commit=True, lease=lease)
            assert layer.committed == "sha256:" + hashlib.sha256(f"{base} {layer.diff_id}".encode()).hexdigest()
            keys = {s["name"]: s for s in await c.snapshots("overlayfs")}
            assert keys["k2"]["parent"] == layer.committed and keys["k2"]["kind"] == "active"
            # The committed snapshot holds exactly the layer: compared with its parent it gives the same diff_id,
            # so /etc/hosts, /etc/hostname, /etc/resolv.conf (runc's mount points) are not in it.
            assert (await c.compare("overlayfs", layer.committed, lease=lease)).diff_id == layer.diff_id
            # The key, empty again on top, has no changes; an image of the layer needs nothing unpacked.
            assert (await c.compare("overlayfs", "k2", media_type=TAR, lease=lease)).diff_id == EMPTY_DIFF_ID
            await make_committed_image(c, "test/adopted:1", ref, layer, lease)
            await run(c, "k3", "test/adopted:1", "overlayfs", FIRST_SEEN)

            for cid in ("k1", "k2", "k3"):
                await c.remove_container(cid)
            for name in ("test/adopted:1", ref):
                await c.remove_image(name)
            await c.remove_lease(lease)
            await c.gc()
            assert await c.snapshots("overlayfs") == []

    asyncio.run(go())


async def make_committed_image(c: Client, name: str, base: str, layer: LayerDiff, lease: str) -> None:
    base_manifest = json.loads(await c.read_content((await c.image(base)).target.digest))
    config = json.loads(await c.read_content(base_manifest["config"]["digest"]))
    config["rootfs"]["diff_ids"].append(layer.diff_id)
    config_bytes = json.dumps(config).encode()
    config_info = await c.write_content(f"config-{name}", config_bytes, lease=lease)
    layers = base_manifest["layers"] + [layer.descriptor.model_dump()]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layers, "config": {
        "mediaType": OCI_CONFIG, "digest": config_info.digest, "size": len(config_bytes)}}).encode()
    refs = [("content", config_info.digest)] + [("content", x["digest"]) for x in layers]
    info = await c.write_content(f"manifest-{name}", manifest, refs=refs, lease=lease)
    await c.put_image(name, {"mediaType": OCI_MANIFEST, "digest": info.digest, "size": info.size})
    assert (await c.unpack_image(name, "overlayfs")).unpacked == 0
