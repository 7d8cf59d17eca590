"""Container inspect and list: the records joined with what the network, volume and exec services know.

The shapes are in views.py and the selection in filters.py, both pure; this service
gathers their inputs (network settings, published ports, mount points, live execs, where
the files are on the host and the layers' sizes) from narrow views of the other services.
"""
from __future__ import annotations

import builtins
from pathlib import Path
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from engine.containers import filters, views
from engine.containers.filesystem import ContainerFiles
from engine.containers.mounts import inspect_mounts
from engine.containers.store import Container, ContainerStore


class ContainerNetworks(Protocol):
    """What the network service knows about a container."""

    def settings(self, cid: str, mode: str, exposed: Iterable[str]) -> dict[str, Any]: ...

    def published(self, cid: str) -> list[dict[str, Any]]: ...


class Describer:
    def __init__(self, store: ContainerStore, networks: ContainerNetworks, mountpoint: Callable[[str], str],
                 files: ContainerFiles, exec_ids: Callable[[str], builtins.list[str]],
                 log_path: Callable[[Container], Path | None],
                 image_ids: Callable[[set[str]], Awaitable[dict[str, str | None]]],
                 lineage: Callable[[builtins.list[str]], Awaitable[set[str]]]) -> None:
        self._log_path = log_path
        self._lineage = lineage
        self._image_ids = image_ids
        self._store = store
        self._networks = networks
        self._mountpoint = mountpoint
        self._files = files
        self._exec_ids = exec_ids

    async def inspect(self, ref: str, size: bool) -> dict[str, Any]:
        c = self._store.get(ref)
        body = views.inspect(c, storage=await self._files.storage(c), exec_ids=self._exec_ids(c.id),
                             mounts=self._mounts(c),
                             network_settings=self._networks.settings(c.id, views.network_mode(c), views.exposed(c)))
        log_file = self._log_path(c)
        body["LogPath"] = str(log_file) if log_file is not None else ""
        if size:
            body.update(views.size(*(await self._files.sizes_of([c]))[0]))
        return body

    async def list(self, f: dict[str, list[str]], all_: bool, limit: int, size: bool) -> list[dict[str, Any]]:
        """docker ps; `limit` below 1 means no limit."""
        lineage = await self._lineage(f["ancestor"]) if f.get("ancestor") else None
        selected = filters.select(self._store.all(), f, self._store.get, all_, limit,
                                  networks_of=self._networks_of, mounts_of=self._mounts,
                                  published_of=lambda c: self._networks.published(c.id), lineage=lineage)
        # As dockerd: a container whose image name has moved to another image (a newer pull, a retag) or is gone
        # is listed by its image's ID.
        current = await self._image_ids({c.image for c in selected if c.image and c.image != c.image_id})
        out = [self.summary(c) for c in selected]
        for item, c in zip(out, selected):
            if c.image in current and current[c.image] != c.image_id:
                item["Image"] = c.image_id
        if size:
            for item, sizes in zip(out, await self._files.sizes_of(selected)):
                item.update(views.size(*sizes, listed=True))
        return out

    def summary(self, c: Container) -> dict[str, Any]:
        return views.summary(c, networks=self._networks.settings(c.id, views.network_mode(c), [])["Networks"],
                             published=self._networks.published(c.id), mounts=self._mounts(c))

    def _mounts(self, c: Container) -> builtins.list[dict[str, Any]]:
        return inspect_mounts(c.host_config, c.volumes, self._mountpoint, c.binds_from)

    def _networks_of(self, c: Container) -> set[str]:
        """Names and ids of the networks a container is on."""
        nets = self._networks.settings(c.id, views.network_mode(c), [])["Networks"]
        return set(nets) | {n["NetworkID"] for n in nets.values()}
