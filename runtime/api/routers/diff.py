"""The diff service: Compare (a layer from a snapshot's changes)."""
from __future__ import annotations

from pydantic import BaseModel

from runtime.api.routing import Router
from runtime.diff.compare import LayerDiff
from runtime.oci import MT_OCI_LAYER_GZIP
from runtime.services import Services

router = Router("/diff", tags=("diff",))


class CompareRequest(BaseModel):
    snapshotter: str
    key: str
    # None: the snapshot's own parent; "": none (the whole tree is the layer).
    parent: str | None = None
    media_type: str = MT_OCI_LAYER_GZIP
    ref: str | None = None
    # Also commit the snapshot as the layer's chainID snapshot where it is exactly that layer (active,
    # overlay, unmounted, under a lease), re-preparing the key empty on top; the answer's `committed` says.
    commit: bool = False


@router.post("/compare", writes=True)
async def compare(body: CompareRequest, s: Services) -> LayerDiff:
    """Write the layer of `key`'s changes into the content store (hold it with a lease)."""
    return await s.differ.compare(body.snapshotter, body.key, body.parent, body.media_type, body.ref,
                                   body.commit)
