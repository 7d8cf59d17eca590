"""GET /system/df (docker system df): what images, containers, volumes and the build cache take on disk.

Every number comes from the disk ledger (engine/storage/ledger.py), which keeps them current as things
change, so an answer costs no tree walk. An image's Size is what it holds on disk, as dockerd's containerd
image store counts it: its blobs (manifest, config, compressed layers) and its unpacked layers;
SharedSize is the part other images hold too. LayersSize is all of the image store, the build cache's
layers included.
"""
from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, Protocol

from engine.containers.store import Container, ContainerStore
from engine.images import views
from engine.storage.ledger import DiskLedger, ImageState, image_parts
from engine.volumes.model import Volume


class Volumes(Protocol):
    users: Callable[[str], builtins.list[str]]

    def list(self) -> builtins.list[Volume]: ...

    def inspect(self, v: Volume) -> dict[str, Any]: ...


class DiskUsage:
    def __init__(self, ledger: DiskLedger, store: ContainerStore, volumes: Volumes,
                 summary: Callable[[Container], dict[str, Any]]) -> None:
        self._ledger = ledger
        self._store = store
        self._volumes = volumes
        self._summary = summary

    async def df(self) -> dict[str, Any]:
        state = await self._ledger.image_state()
        rw = await self._ledger.rw()
        volume_sizes = await self._ledger.volume_sizes()
        containers = self._store.all()
        users: dict[str, int] = {}
        for c in containers:
            users[c.image_id] = users.get(c.image_id, 0) + 1
        sizes = image_sizes(state)

        def container_entry(c: Container) -> dict[str, Any]:
            entry = self._summary(c)
            # Go leaves out a zero SizeRw (omitempty), as it does in `docker ps -s`.
            if rw.get(c.id, 0):
                entry["SizeRw"] = rw[c.id]
            entry["SizeRootFs"] = rw.get(c.id, 0) + sizes.get(c.image_id, (0, 0))[0]
            return entry

        image_entries = []
        # Newest first, as dockerd lists both.
        for image in sorted(state.images, key=lambda i: i.created, reverse=True):
            if image.intermediate:
                continue  # the build cache's: reported under BuildCache
            entry = views.summary(image, image.named)
            entry["Containers"] = users.get(image.id, 0)
            entry["Size"], entry["SharedSize"] = sizes.get(image.id, (0, 0))
            image_entries.append(entry)
        return {
            "LayersSize": state.total,
            "Images": image_entries,
            "Containers": [container_entry(c) for c in sorted(containers, key=lambda c: c.created, reverse=True)],
            "Volumes": [{**self._volumes.inspect(v), "UsageData": {"Size": volume_sizes.get(v.name, 0),
                                                                   "RefCount": len(self._volumes.users(v.name))}}
                        # dockerd's local driver counts only its own directories: not a mount of driver options
                        # (a bind of a host directory, a tmpfs, a share), whose bytes are elsewhere.
                        for v in self._volumes.list() if not v.options],
            "BuildCache": state.build_cache or None,
        }


def image_sizes(state: ImageState) -> dict[str, tuple[int, int]]:
    """Image ID -> (Size, SharedSize): its blobs and unpacked layers, and the part of them others hold too."""
    parts: dict[str, tuple[set[str], set[str]]] = {}
    holders: dict[str, int] = {}
    for image in state.images:
        if image.intermediate:
            continue
        blob_list, layer_list = image_parts(image)
        mine = (set(blob_list), set(layer_list))
        parts[image.id] = mine
        for key in mine[0] | mine[1]:
            holders[key] = holders.get(key, 0) + 1
    out = {}
    for image_id, (blobs, layers) in parts.items():
        sized = [(k, state.blobs.get(k, 0)) for k in blobs] + [(k, state.layers.get(k, 0)) for k in layers]
        out[image_id] = (sum(n for _, n in sized), sum(n for k, n in sized if holders[k] > 1))
    return out

