"""`docker build --squash` (dockerd's experimental mode): the target stage's layers above its base image become one.

As dockerd's SquashImage: the new layer is what the built image's filesystem holds over its base's (the whole
tree from scratch); the config is the built one with the base's diff IDs plus that layer's; the history keeps
every entry, those after the base's marked as empty layers, and ends with one saying what was merged; the
built image itself stays, dangling, as the build cache.
"""
from __future__ import annotations

import copy
from typing import Any, Protocol

from engine.images.compose import NewLayer, now
from engine.images.model import LocalImage, chain_ids
from engine.images.writer import ImageWriter, Written
from runtime.client import NotFound
from runtime.client.diff import DiffAPI
from runtime.client.records import SnapshotInfo

# Where an image's layers may be unpacked; the first holding its top layer is the one to read.
_SNAPSHOTTERS = ("overlayfs", "native")


class SquashRuntime(DiffAPI, Protocol):
    async def snapshot(self, snapshotter: str, key: str, namespace: str | None = None) -> SnapshotInfo: ...


def _diff_ids(image: LocalImage | None) -> list[str]:
    return list(((image.config if image is not None else {}).get("rootfs") or {}).get("diff_ids") or [])


def squashed_config(image: LocalImage, base: LocalImage | None, layer: NewLayer | None,
                    created: str) -> dict[str, Any]:
    """The squashed image's config; `layer` None or empty: the built image changed no file of its base's."""
    doc = copy.deepcopy(image.config)
    new = layer is not None and not layer.empty
    doc["rootfs"] = {"type": "layers", "diff_ids": [*_diff_ids(base), *([layer.diff_id] if new and layer else [])]}
    kept = len((base.config.get("history") or []) if base is not None else [])
    history = [dict(h, empty_layer=True) if i >= kept else dict(h) for i, h in enumerate(doc.get("history") or [])]
    comment = f"merge {image.id} to {base.id}" if base is not None else f"create new from {image.id}"
    doc["history"] = [*history, {"created": created, "comment": comment, **({} if new else {"empty_layer": True})}]
    doc["created"] = created
    return doc


async def squash(runtime: SquashRuntime, writer: ImageWriter, image: LocalImage, base: LocalImage | None) -> Written:
    """The squashed image, written and unpacked (dangling until tagged)."""
    chain, base_chain = chain_ids(_diff_ids(image)), chain_ids(_diff_ids(base))
    async with writer.lease() as lease:
        layer, snapshotter = None, None
        if chain and chain != base_chain:
            snapshotter = await _holding(runtime, chain[-1])
            diff = await runtime.compare(snapshotter, chain[-1], parent=base_chain[-1] if base_chain else "",
                                         lease=lease)
            layer = NewLayer(diff.descriptor.model_dump(exclude_none=True), diff.diff_id)
        return await writer.write(base, squashed_config(image, base, layer, now()), layer, lease=lease,
                                  snapshotter=snapshotter)


async def _holding(runtime: SquashRuntime, key: str) -> str:
    for snapshotter in _SNAPSHOTTERS:
        try:
            await runtime.snapshot(snapshotter, key)
            return snapshotter
        except NotFound:
            continue
    raise NotFound(f"the built image's top layer {key} is not unpacked: nothing to squash")
