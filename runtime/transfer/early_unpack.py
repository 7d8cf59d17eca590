"""Applying an archive's layers while the rest of it is still streaming in.

A docker-archive whose manifest.json comes before its blobs (pyruntimed's exports write the layout
files first) says which config and layers make each image before any layer has arrived. Each layer
is then applied as soon as its blob is stored (so verified against its digest) and the layer below
it is applied, by a worker beside the thread that reads the archive: receiving the next blob and
applying this one overlap, where an import that unpacks at its end waits for both in turn.

Nothing is trusted early that the import would check later: a layer is applied only onto its own
chain's parent, and its snapshot is committed under its chainID only once its uncompressed bytes
hash to the config's diff_id (unpack_layer); the importer's own checks all run afterwards as before.
What is applied early sits under the import's lease like everything else it writes, so a failed
import, or a layer that no image kept ends up using, goes with the lease. Anything unexpected (a
link, a mismatch, an error) just stops the early work: the importer's unpack does what is left and
reports the error in its own words.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.metadata.content import ContentService
from runtime.metadata.snapshots import SnapshotService
from runtime.oci import MT_DOCKER_LAYER, MT_DOCKER_LAYER_GZIP, MT_OCI_LAYER_ZSTD, Descriptor
from runtime.transfer.archive_read import Blob
from runtime.transfer.fetch import UNCOMPRESSED_LABEL
from runtime.transfer.unpack import chain_ids, unpack_layer

log = logging.getLogger("runtime.transfer")

_MEDIA_TYPES = {"none": MT_DOCKER_LAYER, "gzip": MT_DOCKER_LAYER_GZIP, "zstd": MT_OCI_LAYER_ZSTD}


@dataclass
class _Image:
    config: str  # entry names in the archive
    layers: list[str]
    diff_ids: list[str] | None = None  # once its config is stored and read
    done: int = 0  # layers applied (or found already there), bottom up


@dataclass
class _State:
    images: list[_Image] = field(default_factory=list)
    blobs: dict[str, Blob] = field(default_factory=dict)
    seen_blob: bool = False


class EarlyUnpacker:
    """Fed from the archive's reading thread (layout(), blob()); applies on the event loop's worker."""

    def __init__(self, content: ContentService, snapshots: SnapshotService,
                 wanted: Callable[[dict[str, Any]], bool]) -> None:
        self._content = content
        self._snapshots = snapshots
        self._wanted = wanted
        self._loop = asyncio.get_running_loop()
        self._state = _State()
        self._changed = asyncio.Event()
        self._stopping = False
        self.applied = 0
        self._worker = asyncio.ensure_future(self._run())

    # -- from the reading thread -----------------------------------------------------------------

    def layout(self, name: str, data: bytes) -> None:
        self._loop.call_soon_threadsafe(self._on_layout, name, data)

    def blob(self, blob: Blob) -> None:
        self._loop.call_soon_threadsafe(self._on_blob, blob)

    # -- on the loop -----------------------------------------------------------------------------

    def _on_layout(self, name: str, data: bytes) -> None:
        # Only a manifest.json ahead of every blob plans anything: later, the blobs are all but in.
        if name != "manifest.json" or self._state.seen_blob:
            return
        try:
            items = json.loads(data)
            for item in items:
                layers = item.get("Layers") or []
                if isinstance(item.get("Config"), str) and all(isinstance(p, str) for p in layers):
                    self._state.images.append(_Image(item["Config"], list(layers)))
        except (ValueError, TypeError, AttributeError):
            self._state.images.clear()  # the importer says what is wrong with it
        self._changed.set()

    def _on_blob(self, blob: Blob) -> None:
        self._state.seen_blob = True
        self._state.blobs[blob.name] = blob
        self._changed.set()

    async def stop(self) -> None:
        """Take no new step and wait for the one in progress; the importer's unpack does the rest."""
        self._stopping = True
        self._changed.set()
        await self._worker

    async def _run(self) -> None:
        try:
            while not self._stopping:
                if not await self._step():
                    self._changed.clear()
                    await self._changed.wait()
        except Exception as e:  # noqa: BLE001 - the importer's own unpack meets and reports it
            log.info("early unpack stopped: %s", e)

    async def _step(self) -> bool:
        """Do one thing that is ready; False when nothing is."""
        for image in self._state.images:
            if image.diff_ids is None:
                config = self._state.blobs.get(image.config)
                if config is None:
                    continue
                doc = json.loads(await self._content.read(config.digest))
                diff_ids = (doc.get("rootfs") or {}).get("diff_ids") if isinstance(doc, dict) else None
                if not self._wanted(doc) or not isinstance(diff_ids, list) or len(diff_ids) != len(image.layers):
                    image.diff_ids, image.done = [], len(image.layers)  # not for this import: leave it alone
                else:
                    image.diff_ids = [str(d) for d in diff_ids]
                return True
            if image.done < len(image.layers) and image.layers[image.done] in self._state.blobs:
                await self._apply(image)
                return True
        return False

    async def _apply(self, image: _Image) -> None:
        assert image.diff_ids is not None
        i = image.done
        blob = self._state.blobs[image.layers[i]]
        diff_id = image.diff_ids[i]
        chains = chain_ids(image.diff_ids[: i + 1])
        if blob.compression == "none" and blob.digest != diff_id:
            raise ValueError(f"layer {i} is not what its config says")
        desc = Descriptor(mediaType=_MEDIA_TYPES[blob.compression], digest=blob.digest, size=blob.size)
        # A compressed layer is hashed while it is applied and committed only if it matches diff_id.
        applied = await unpack_layer(self._snapshots, desc, str(self._content.path(blob.digest)), diff_id,
                                     chains[-1], chains[-2] if i else None, verified=blob.compression == "none")
        if applied:
            self.applied += 1
            if blob.compression != "none":
                await self._content.set_label(blob.digest, UNCOMPRESSED_LABEL, diff_id)
        image.done += 1
