"""Mirrors for any registry, cut connections, and pulls interrupted by the client."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fixtures.conftest_plugin import BIG_REF
from tests.fixtures.daemons import RuntimeDaemon
from tests.integration.helpers import blob_files, pull, verify_blob


@pytest.fixture
def mirrored_daemon(tmp_path_factory, proxy):
    base = tmp_path_factory.mktemp("rtm")
    d = RuntimeDaemon(str(base))
    d.config = d.write_config(
        "[registry]\n"
        f'mirrors = {{ "docker.io" = ["{proxy.host}"], "registry.example.invalid:5000" = ["http://{proxy.host}"] }}\n'
    )
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.mark.parametrize("ref,name", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("registry.example.invalid:5000/library/busybox:latest", "registry.example.invalid:5000/library/busybox:latest"),
])
def test_mirrors_serve_any_registry(mirrored_daemon, proxy, images, ref, name):
    async def go():
        async with mirrored_daemon.client() as c:
            return await pull(c, ref)

    got = asyncio.run(go())
    assert got["name"] == name
    assert got["target"]["digest"] == images["library/busybox:latest"].digest
    assert proxy.requests_to("/manifests/")


def test_cut_connection_resumes_within_the_pull(runtime_daemon, big_proxy, big_image):
    layer = big_image.layer_digests[-1]
    big_proxy.cut_blob_after(4 * 1024 * 1024, digest=layer)

    async def go():
        async with runtime_daemon.client() as c:
            return await pull(c, f"{big_proxy.host}/{BIG_REF}")

    assert asyncio.run(go())["target"]["digest"] == big_image.digest
    ranged = [r for r in big_proxy.requests if layer in r.path and r.range]
    assert ranged and ranged[-1].status == 206
    assert big_proxy.blob_bytes_sent[layer] < len(big_image.blobs[layer]) + 5 * 1024 * 1024


def test_client_disconnect_then_resume(runtime_daemon, big_proxy, big_image):
    total = sum(len(big_image.blobs[d]) for d in big_image.layer_digests)
    big_proxy.slow_blobs(100 * 1024 * 1024)
    ref = f"{big_proxy.host}/{BIG_REF}"

    async def interrupted():
        async with runtime_daemon.client() as c:
            async for _ in c.pull(ref):
                if big_proxy.total_blob_bytes > total * 0.3:
                    return

    asyncio.run(interrupted())
    big_proxy.slow_blobs(None)
    first = big_proxy.total_blob_bytes

    async def again():
        async with runtime_daemon.client() as c:
            return await pull(c, ref)

    assert asyncio.run(again())["target"]["digest"] == big_image.digest
    assert big_proxy.total_blob_bytes - first < total
    assert all(verify_blob(p) for p in blob_files(runtime_daemon.root).values())


def test_a_pull_cut_short_by_a_runtime_kill_leaves_no_lease(runtime_daemon, big_proxy, big_image):
    """The lease of a pull the runtime's own death cut short goes at its next start (nothing would finish
    that pull or release what it held); a client's lease stays."""
    big_proxy.slow_blobs(4 * 1024 * 1024)
    ref = f"{big_proxy.host}/{BIG_REF}"

    async def begin():
        async with runtime_daemon.client() as c:
            await c.create_lease("mine")
            async for _ in c.pull(ref):
                if big_proxy.total_blob_bytes > 0:
                    runtime_daemon.kill9()
                    return

    asyncio.run(begin())
    big_proxy.slow_blobs(None)
    runtime_daemon.start()

    async def leases():
        async with runtime_daemon.client() as c:
            await c.gc()
            return [lease["id"] for lease in await c.request("GET", "/leases")], len(await c.content())

    ids, blobs = asyncio.run(leases())
    assert ids == ["mine"]
    assert blobs == 0


def test_a_blob_longer_than_its_size_stores_nothing_and_spoils_no_later_pull(runtime_daemon, proxy, images):
    # A hostile or broken registry sends the layer and more, with no Content-Length to refuse it by.
    image = images["library/busybox:latest"]
    layer = image.layer_digests[-1]
    proxy.pad_next_blob(b"\0" * 4096, digest=layer)

    async def go():
        async with runtime_daemon.client() as c:
            with pytest.raises(Exception, match="more than the blob's"):
                await pull(c, f"{proxy.host}/library/busybox:latest")
            # Nothing of it was kept to resume from: the next pull of the same blob fetches it whole.
            return await pull(c, f"{proxy.host}/library/busybox:latest")

    assert asyncio.run(go())["target"]["digest"] == image.digest
    ingests = list(Path(runtime_daemon.root).rglob("ingest/*/data"))
    assert all(p.stat().st_size == 0 for p in ingests), ingests
