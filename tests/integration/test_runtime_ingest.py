"""Content ingests through the runtime API: resume, offsets, verification, abort, leases; pyctr content ingest."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import AsyncIterator

import pytest

from runtime.client import Conflict, DataLoss, FailedPrecondition, InvalidArgument, NotFound
from tests.integration.helpers import BIN


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def chunks(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_an_ingest_resumes_refuses_wrong_offsets_and_verifies(runtime_daemon):
    data = os.urandom(3_000_000)

    async def go() -> None:
        async with runtime_daemon.client() as c:
            lease = (await c.create_lease())["id"]
            st = await c.open_ingest("blob-1", expected=sha(data), total=len(data), lease=lease)
            assert (st.ref, st.offset, st.total, st.expected) == ("blob-1", 0, len(data), sha(data))
            assert (await c.write_ingest("blob-1", 0, chunks(data[:1_000_000]))).offset == 1_000_000
            # A second open resumes where the first stopped.
            assert (await c.open_ingest("blob-1", expected=sha(data), total=len(data))).offset == 1_000_000
            with pytest.raises(Conflict, match="at offset 1000000, not 5"):
                await c.write_ingest("blob-1", 5, b"xx")
            with pytest.raises(InvalidArgument, match="past its total"):
                await c.write_ingest("blob-1", 1_000_000, chunks(data[1_000_000:2_000_000] + b"x" * 1_000_001))
            # What the refused write sent up to the total is kept, nothing past it.
            assert (await c.ingest_status("blob-1")).offset == len(data)
            # Those bytes are wrong: start over, then resume after a first part.
            assert (await c.write_ingest("blob-1", 0, chunks(data[:2_000_000]))).offset == 2_000_000
            await c.write_ingest("blob-1", 2_000_000, chunks(data[2_000_000:]))
            info = await c.commit_ingest("blob-1", len(data), sha(data), labels={"a": "b"}, lease=lease)
            assert (info.digest, info.size, info.labels) == (sha(data), len(data), {"a": "b"})
            assert await c.read_content(sha(data)) == data
            assert not [i for i in await c.ingests() if i["ref"].endswith("/blob-1")]
            # The lease holds it against GC; without it, nothing references it.
            await c.gc()
            assert (await c.content_info(sha(data))).size == len(data)
            await c.remove_lease(lease)
            await c.gc()
            with pytest.raises(NotFound):
                await c.content_info(sha(data))

    asyncio.run(go())


def test_a_mismatch_stores_nothing_and_abort_drops_the_ingest(runtime_daemon):
    data = b"hello world\n" * 1000

    async def go() -> None:
        async with runtime_daemon.client() as c:
            await c.open_ingest("bad")
            await c.write_ingest("bad", 0, data)
            with pytest.raises(DataLoss, match="unexpected commit size"):
                await c.commit_ingest("bad", len(data) + 1, sha(data))
            wrong = sha(b"something else")
            with pytest.raises(DataLoss, match=f"expected {wrong}"):
                await c.commit_ingest("bad", len(data), wrong)
            for digest in (sha(data), wrong):
                with pytest.raises(NotFound):
                    await c.content_info(digest)
            # A digest mismatch leaves no ingest to resume.
            with pytest.raises(NotFound):
                await c.ingest_status("bad")

            await c.open_ingest("gone")
            await c.write_ingest("gone", 0, b"partial")
            # Offset 0 on a non-empty ingest starts it over.
            assert (await c.write_ingest("gone", 0, b"pa")).offset == 2
            await c.abort_ingest("gone")
            assert not [i for i in await c.ingests() if i["ref"].endswith("/gone")]
            with pytest.raises(NotFound):
                await c.abort_ingest("gone")
            with pytest.raises(NotFound):
                await c.write_ingest("gone", 0, b"x")

    asyncio.run(go())


def test_write_content_resumes_bytes_and_hashes_streams(runtime_daemon):
    data = os.urandom(500_000)

    async def go() -> None:
        async with runtime_daemon.client() as c:
            lease = (await c.create_lease())["id"]
            await c.open_ingest("wc", expected=sha(data), total=len(data))
            await c.write_ingest("wc", 0, data[:200_000])
            info = await c.write_content("wc", data, lease=lease, refs=[("content", sha(b"child"))])
            assert (info.digest, info.size) == (sha(data), len(data))
            streamed = await c.write_content("layers/wc2 x", chunks(data[::-1]), lease=lease)
            assert streamed.digest == sha(data[::-1])
            with pytest.raises(DataLoss):
                await c.write_content("wc3", chunks(b"abc"), expected=sha(b"abd"), lease=lease)
            await c.remove_lease(lease)

    asyncio.run(go())


def test_pyctr_content_ingest_prints_the_digest(runtime_daemon, pyctr_env):
    data = os.urandom(2_500_000)
    out = subprocess.run([str(BIN / "pyctr"), "content", "ingest", "from-stdin"], input=data, env=pyctr_env,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == sha(data)
    bad = subprocess.run([str(BIN / "pyctr"), "content", "ingest", "again", "--expected", sha(b"x")], input=data,
                         env=pyctr_env, capture_output=True, timeout=60)
    assert bad.returncode == 1 and b"unexpected commit digest" in bad.stderr


def test_unpack_refuses_an_image_whose_layers_are_missing(runtime_daemon):
    async def go() -> None:
        async with runtime_daemon.client() as c:
            lease = (await c.create_lease())["id"]
            config = b'{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["%s"]}}' \
                % sha(b"layer").encode()
            await c.write_content("cfg", config, lease=lease)
            layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(b"layer"), "size": 5}
            manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                              "digest": sha(config), "size": len(config)},
                                   "layers": [layer]}).encode()
            info = await c.write_content("man", manifest, lease=lease, refs=[("content", sha(config))])
            await c.put_image("test/missing:1", {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                 "digest": info.digest, "size": info.size})
            with pytest.raises(FailedPrecondition, match=f"layer {sha(b'layer')} of test/missing:1 is not in"):
                await c.unpack_image("test/missing:1")
            with pytest.raises(NotFound):
                await c.unpack_image("test/none:1")
            await c.remove_image("test/missing:1")
            await c.remove_lease(lease)

    asyncio.run(go())


def test_a_small_blob_in_one_request_is_verified_leased_and_referenced(runtime_daemon):
    child, parent = b'{"config": true}', b'{"manifest": "points at the config"}'

    async def go() -> None:
        async with runtime_daemon.client() as c:
            lease = (await c.create_lease())["id"]
            await c.put_blob(child, sha(child), lease=lease)
            info = await c.put_blob(parent, sha(parent), refs=[("content", sha(child))], labels={"k": "v"},
                                    lease=lease)
            assert (info.digest, info.size, info.labels) == (sha(parent), len(parent), {"k": "v"})
            assert await c.read_content(sha(child)) == child
            with pytest.raises(DataLoss):
                await c.put_blob(b"abc", sha(b"abd"), lease=lease)
            with pytest.raises(NotFound):
                await c.content_info(sha(b"abd"))
            assert not [i for i in await c.ingests() if i["ref"].split("/")[-1].startswith("blob-")]
            # A stream whose digest and size are given is not hashed here: the runtime still refuses a mismatch.
            with pytest.raises(DataLoss):
                await c.write_content("wc4", chunks(b"abc"), expected=sha(b"abd"), size=3, lease=lease)
            await c.remove_lease(lease)
            await c.gc()
            for digest in (sha(child), sha(parent)):
                with pytest.raises(NotFound):
                    await c.content_info(digest)

    asyncio.run(go())


def test_a_collection_drops_ingests_abandoned_for_an_hour(runtime_daemon):
    # Two writers killed with their runtime: one an hour past its last write, one just now (a pull resumes it).
    async def write() -> dict[str, str]:
        async with runtime_daemon.client() as c:
            for ref in ("stale-1", "fresh-1"):
                await c.open_ingest(ref, total=10)
                await c.write_ingest(ref, 0, b"12345")
            return {i["ref"].rsplit("/", 1)[-1]: i["ref"] for i in await c.ingests()}

    refs = asyncio.run(write())
    runtime_daemon.kill9()
    data = os.path.join(runtime_daemon.root, "content", "ingest", hashlib.sha256(refs["stale-1"].encode()).hexdigest(),
                        "data")
    two_hours_ago = os.stat(data).st_mtime - 7200
    os.utime(data, (two_hours_ago, two_hours_ago))
    runtime_daemon.start()

    async def collect() -> None:
        async with runtime_daemon.client() as c:
            await c.gc()
            assert [i["ref"].rsplit("/", 1)[-1] for i in await c.ingests()] == ["fresh-1"]
            await c.abort_ingest("fresh-1")

    asyncio.run(collect())


def test_a_restart_removes_the_snapshots_an_unfinished_operation_left(runtime_daemon):
    # "extract-..." is what an unpack prepares for one layer: a runtime killed mid-pull leaves it, a GC root.
    async def prepare() -> None:
        async with runtime_daemon.client() as c:
            await c.prepare_snapshot("overlayfs", "extract-0123 sha256:feed")
            await c.prepare_snapshot("overlayfs", "mine")

    async def keys() -> list[str]:
        async with runtime_daemon.client() as c:
            return sorted(s["key"] for s in await c.snapshots("overlayfs"))

    asyncio.run(prepare())
    runtime_daemon.kill9()
    runtime_daemon.start()
    try:
        assert asyncio.run(keys()) == ["mine"]
    finally:
        async def clean() -> None:
            async with runtime_daemon.client() as c:
                await c.remove_snapshot("overlayfs", "mine")
        asyncio.run(clean())
