"""Issue 2 acceptance 7 and 8: shared downloads and resume after kill -9 (big image)."""
from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.fixtures.conftest_plugin import BIG_REF
from tests.integration.helpers import BIN, blob_files, pull, verify_blob

pytestmark = pytest.mark.slow


def test_concurrent_pulls_fetch_each_blob_once(runtime_daemon, big_proxy, big_image):
    ref = f"{big_proxy.host}/{BIG_REF}"

    async def go():
        async def one(i):
            async with runtime_daemon.client() as c:
                return await pull(c, ref)

        return await asyncio.gather(*(one(i) for i in range(5)))

    results = asyncio.run(go())
    assert {r["target"]["digest"] for r in results} == {big_image.digest}
    for digest in big_image.layer_digests:
        assert big_proxy.blob_gets.get(digest) == 1, (digest, big_proxy.blob_gets)


def test_pull_resumes_after_kill9(runtime_daemon, big_proxy, big_image, pyctr_env):
    ref = f"{big_proxy.host}/{BIG_REF}"
    total = sum(big_image.blobs[d].__len__() for d in big_image.layer_digests)
    # Slow enough that the kill lands mid-pull, fast enough for CI.
    big_proxy.slow_blobs(100 * 1024 * 1024)
    proc = subprocess.Popen([str(BIN / "pyctr"), "images", "pull", ref], env=pyctr_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while big_proxy.total_blob_bytes < total * 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert big_proxy.total_blob_bytes < total, "pull finished before the kill"
        runtime_daemon.kill9()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = big_proxy.total_blob_bytes
    big_proxy.slow_blobs(None)
    runtime_daemon.start()

    async def go():
        async with runtime_daemon.client() as c:
            return await pull(c, ref)

    assert asyncio.run(go())["target"]["digest"] == big_image.digest
    refetched = big_proxy.total_blob_bytes - first
    assert refetched < total, (refetched, total)
    blobs = blob_files(runtime_daemon.root)
    assert set(big_image.layer_digests) <= set(blobs)
    assert all(verify_blob(p) for p in blobs.values())
