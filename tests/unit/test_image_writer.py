"""A failed image write leaves no image record behind, and never removes another's."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from engine.images.writer import ImageWriter
from runtime.client import Unavailable
from runtime.client.records import Image

CONFIG = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "config": {}}


class _Runtime:
    """Records and blobs in memory; unpacking fails as when pyruntimed goes away mid-import."""

    def __init__(self) -> None:
        self.images: dict[str, float] = {}
        self.put: list[str] = []

    async def put_blob(self, data: bytes, digest: str, **_: Any) -> None:
        return None

    async def put_image(self, name: str, target: dict[str, Any], labels: dict[str, str] | None = None) -> Image:
        self.put.append(name)
        now = time.time()
        created = self.images.setdefault(name, now)
        return Image.model_validate({"name": name, "target": target, "labels": labels or {}, "created": created,
                                     "updated": now})

    async def unpack_image(self, name: str, snapshotter: str | None = None) -> None:
        raise Unavailable("cannot reach pyruntimed")

    async def remove_image(self, name: str) -> None:
        del self.images[name]


def test_a_failed_unpack_removes_only_the_record_it_made() -> None:
    runtime = _Runtime()
    writer = ImageWriter(runtime, None)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        asyncio.run(writer.write(None, CONFIG, None, lease="l"))
    assert runtime.images == {}
    name = runtime.put[-1]
    runtime.images[name] = 1.0  # an image of that very manifest, stored before
    with pytest.raises(Unavailable):
        asyncio.run(writer.write(None, CONFIG, None, lease="l"))
    assert name in runtime.images
