"""Unpack an image whose content is all in the store (written, imported, loaded, built) into snapshots.

The same steps as a pull's unpack (runtime/transfer/unpack.py): each layer applied on the previous
chainID and committed under its own, verified against the config's diff_ids, then the config
references the top snapshot so GC keeps it as long as the image. Layers already unpacked are
skipped, so unpacking twice is a no-op. A temporary lease holds the new snapshots until the
config references them.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from runtime.metadata.content import ContentService
from runtime.metadata.images import Image
from runtime.metadata.leases import UNPACK_LABEL, LeaseStore, reset_lease, set_lease
from runtime.metadata.snapshots import SnapshotService
from runtime.oci import INDEX_TYPES, LAYER_TYPES, descriptor, validate_digest
from runtime.remotes.platforms import select_manifest
from runtime.transfer.fetch import UNCOMPRESSED_LABEL
from runtime.transfer.unpack import chain_ids, check_diff_ids, unpack_layer


class Unpacked(BaseModel):
    image: str
    snapshotter: str
    chain_id: str | None  # None: an image without layers
    unpacked: int  # layers applied now (0: everything was there already)


async def _json(content: ContentService, digest: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(await content.read(digest))
    except NotFound:
        raise FailedPrecondition(f"{what} {digest} is not in the content store") from None
    except ValueError:
        raise InvalidArgument(f"{what} {digest} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what} {digest} is not a JSON object")
    return doc


async def unpack_image(content: ContentService, snapshots: SnapshotService, leases: LeaseStore,
                       image: Image) -> Unpacked:
    target = image.target
    if target.mediaType in INDEX_TYPES:
        target = select_manifest(await _json(content, target.digest, "index"))
    manifest = await _json(content, target.digest, "manifest")
    config = descriptor(manifest.get("config"), "config")
    layers = [descriptor(layer, "layer") for layer in manifest.get("layers") or []]
    for layer in layers:
        if layer.mediaType not in LAYER_TYPES:
            raise InvalidArgument(f"unsupported layer media type {layer.mediaType!r}")
    diff_ids = list((await _json(content, config.digest, "image config")).get("rootfs", {}).get("diff_ids") or [])
    check_diff_ids(layers, diff_ids)
    for d in diff_ids:
        validate_digest(d)
    chains = chain_ids(diff_ids)
    lease = await leases.create(labels={UNPACK_LABEL: image.name}, expire_after=3600)
    token = set_lease(lease.id)
    applied = 0
    try:
        parent: str | None = None
        for layer, diff_id, chain in zip(layers, diff_ids, chains):
            if not await snapshots.exists(chain):
                try:
                    info = await content.info(layer.digest)
                except NotFound:
                    raise FailedPrecondition(f"layer {layer.digest} of {image.name} is not in the content store") \
                        from None
                verified = info.labels.get(UNCOMPRESSED_LABEL) == diff_id
                applied += await unpack_layer(snapshots, layer, str(content.path(layer.digest)), diff_id, chain,
                                              parent, verified)
            parent = chain
        if chains:
            await content.add_refs(config.digest, [("snapshot", f"{snapshots.name}/{chains[-1]}")])
    finally:
        reset_lease(token)
        await leases.delete(lease.id)
    return Unpacked(image=image.name, snapshotter=snapshots.name, chain_id=chains[-1] if chains else None,
                    unpacked=applied)
