"""Each image layer's size as Docker shows it: the bytes of its files unpacked, not its compressed blob.

The runtime measures a layer's snapshot once, when it is committed (its `content` bytes: file contents and
symlink targets, hardlinks once, as dockerd's overlay2 driver adds a layer up). Layers never change, so
what is learnt is kept: `docker images` asks the runtime only about layers it has not seen. A layer with no
snapshot here (an image loaded for another platform) keeps its compressed size.
"""
from __future__ import annotations

import contextlib

from engine.images.model import LocalImage, chain_ids
from runtime import client as rt

# Layers remembered: far more than a host has, a bound all the same.
_KEPT = 8192
# The copying snapshotter keeps each layer with everything under it: a layer's own bytes are the difference.
_CUMULATIVE = {"native"}


class LayerSizes:
    def __init__(self, runtime: rt.RuntimeAPI) -> None:
        self._rt = runtime
        self._known: dict[str, int] = {}  # chain ID -> the layer's own bytes
        self._snapshotters: list[str] | None = None

    async def fill(self, images: list[LocalImage]) -> None:
        """Set `unpacked` on each image whose layers are all unpacked here."""
        chains = {image.id: chain_ids(image.diff_ids) for image in images}
        wanted = sorted({key for chain in chains.values() for key in chain if key not in self._known})
        if wanted:
            await self._measure(wanted, chains)
        for image in images:
            chain = chains[image.id]
            if chain and len(chain) == len(image.layers) and all(key in self._known for key in chain):
                image.unpacked = [self._known[key] for key in chain]

    async def _measure(self, wanted: list[str], chains: dict[str, list[str]]) -> None:
        if self._snapshotters is None:
            with contextlib.suppress(rt.RuntimeError_):
                self._snapshotters = await self._rt.snapshotters()
        parents = {key: chain[i - 1] for chain in chains.values() for i, key in enumerate(chain) if i}
        for name in self._snapshotters or []:
            if not wanted:
                return
            asked = sorted({*wanted, *(parents[k] for k in wanted if k in parents)}) if name in _CUMULATIVE \
                else wanted
            with contextlib.suppress(rt.RuntimeError_):
                found = {key: usage.content for key, usage in (await self._rt.snapshot_usages(name, asked)).items()}
                for key in wanted:
                    if key not in found:
                        continue
                    below = found.get(parents.get(key, ""), 0) if name in _CUMULATIVE else 0
                    self._keep(key, max(found[key] - below, 0))
                wanted = [key for key in wanted if key not in found]

    def _keep(self, key: str, size: int) -> None:
        if len(self._known) >= _KEPT:
            del self._known[next(iter(self._known))]
        self._known[key] = size
