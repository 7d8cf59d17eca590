"""The runtime's container filesystem API through its client, on both snapshotters."""
from __future__ import annotations

import asyncio
import io
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.client import Client, InvalidArgument, NotFound
from runtime.client.imageconfig import process_from_image
from tests.integration.helpers import pull


def tar_bytes(**files: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


async def chunked(data: bytes, size: int = 7000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
def test_stat_copy_in_and_out_changes_and_export(runtime_daemon, registry, snapshotter):
    if snapshotter == "overlayfs" and not os.path.isdir("/sys/module/overlay"):
        pytest.skip("no overlayfs here")

    async def scenario() -> None:
        async with Client(runtime_daemon.address) as c:
            ref = f"{registry.host}/library/busybox:latest"
            await pull(c, ref, plain_http=True, snapshotter=snapshotter)
            process = process_from_image(await c.image_config(ref))
            await c.create_container("fs1", ref, {**process}, snapshotter=snapshotter)

            st = await c.stat_path("fs1", "/etc/passwd")
            assert (st["name"], st["mode"], st["linkTarget"]) == ("passwd", 0o644, "")
            assert (await c.stat_path("fs1", "/bin/sh"))["linkTarget"] == "/bin/busybox"
            with pytest.raises(NotFound):
                await c.stat_path("fs1", "/nope")

            big = os.urandom(300_000)
            await c.put_archive("fs1", "/tmp", chunked(tar_bytes(**{"big": big, "sub/x": b"x"})))
            await c.put_archive("fs1", "/", chunked(tar_bytes(**{"etc/passwd": b"root:x:0:0::/:/bin/sh\n"})))
            with pytest.raises(InvalidArgument, match="refusing archive entry '../x'"):
                await c.put_archive("fs1", "/tmp", chunked(tar_bytes(**{"../x": b"x"})))
            with pytest.raises(NotFound):
                await c.put_archive("fs1", "/no/such/dir", chunked(tar_bytes(a=b"a")))

            async with c.archive("fs1", "/tmp") as (st, body):
                assert st["name"] == "tmp" and st["mode"] == (1 << 31) | (1 << 20) | 0o777  # sticky 1777
                tar = tarfile.open(fileobj=io.BytesIO(b"".join([chunk async for chunk in body])))
            assert tar.extractfile("tmp/big").read() == big
            assert tar.getnames() == ["tmp", "tmp/big", "tmp/sub", "tmp/sub/x"]

            assert await c.container_changes("fs1") == [
                {"path": "/etc", "kind": 0}, {"path": "/etc/passwd", "kind": 0}, {"path": "/tmp", "kind": 0},
                {"path": "/tmp/big", "kind": 1}, {"path": "/tmp/sub", "kind": 1}, {"path": "/tmp/sub/x", "kind": 1},
            ]
            async with c.export("fs1") as body:
                exported = tarfile.open(fileobj=io.BytesIO(b"".join([chunk async for chunk in body])))
            assert {"bin/busybox", "tmp/big", "etc/passwd"} <= set(exported.getnames())
            # The temporary mounts and the changes' parent view are gone.
            assert os.listdir(Path(runtime_daemon.state, "rootfs")) == []
            assert [s["key"] for s in await c.snapshots(snapshotter) if s["key"].startswith("changes-")] == []
            await c.remove_container("fs1")

    asyncio.run(scenario())
