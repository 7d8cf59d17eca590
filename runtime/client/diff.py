"""The runtime's diff service: Compare makes a layer blob from what a snapshot changed.

`compare` streams the layer (gzip by default; plain tar, zstd) into the content store under
`lease` and answers with its descriptor and its diff_id (the uncompressed digest an image
config lists). A container's snapshot key is its id; the mount points its spec made are left
out. Without `parent` the layer is over the snapshot's own parent; `parent=""` makes the whole
tree the layer. With `commit`, where the snapshot is exactly the layer over its parent, the
runtime also commits it as the layer's chainID snapshot and prepares the key again, empty, on top
(`committed` names it), so an image of that layer needs nothing applied.
"""
from __future__ import annotations

from typing import Protocol

from runtime.client.records import Descriptor, _Record
from runtime.client.transport import Transport

LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


class LayerDiff(_Record):
    descriptor: Descriptor
    diff_id: str
    committed: str | None = None  # with commit=True: the chainID snapshot the changes now are, if they could be


class DiffAPI(Protocol):
    async def compare(self, snapshotter: str, key: str, *, parent: str | None = None, media_type: str = LAYER_GZIP,
                      commit: bool = False, namespace: str | None = None, lease: str | None = None) -> LayerDiff: ...


class DiffClient(Transport):
    async def compare(self, snapshotter: str, key: str, *, parent: str | None = None, media_type: str = LAYER_GZIP,
                      commit: bool = False, namespace: str | None = None, lease: str | None = None) -> LayerDiff:
        body = {"snapshotter": snapshotter, "key": key, "parent": parent, "media_type": media_type, "commit": commit}
        return await self._record(LayerDiff, "POST", "/diff/compare", json_body=body, namespace=namespace,
                                  lease=lease)
