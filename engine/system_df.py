"""GET /system/df (docker system df): what images, containers and volumes take on disk.

Only reads: the image list, the container records with their writable layers, the
volumes' usage; the numbers are put together in Docker's shape here.
"""
from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from engine.containers.store import Container, ContainerStore
from engine.images import views
from engine.images.model import LocalImage
from engine.volumes.model import Volume


class Images(Protocol):
    async def images(self) -> list[LocalImage]: ...


class Volumes(Protocol):
    def list(self) -> list[Volume]: ...

    async def usage(self, volumes: Iterable[Volume]) -> builtins.list[dict[str, Any]]: ...


class DiskUsage:
    def __init__(self, images: Images, store: ContainerStore, volumes: Volumes,
                 summary: Callable[[Container], dict[str, Any]],
                 size: Callable[[Container], Awaitable[int | None]],
                 build_cache: Callable[[], Awaitable[builtins.list[dict[str, Any]]]]) -> None:
        self._build_cache = build_cache
        self._images = images
        self._store = store
        self._volumes = volumes
        self._summary = summary
        self._size = size

    async def df(self) -> dict[str, Any]:
        images = await self._images.images()
        containers = self._store.all()
        users: dict[str, int] = {}
        for c in containers:
            users[c.image_id] = users.get(c.image_id, 0) + 1

        async def container_entry(c: Container) -> dict[str, Any]:
            entry = self._summary(c)
            entry["SizeRw"] = await self._size(c) or 0
            entry["SizeRootFs"] = entry["SizeRw"] + next((i.size for i in images if i.id == c.image_id), 0)
            return entry

        image_entries = []
        for image in images:
            if image.intermediate:
                continue  # the build cache's: reported under BuildCache
            entry = views.summary(image, image.named)
            entry["Containers"] = users.get(image.id, 0)
            entry["SharedSize"] = 0
            image_entries.append(entry)
        return {
            "LayersSize": sum(i.size for i in images),
            "Images": image_entries,
            "Containers": await asyncio.gather(*(container_entry(c) for c in containers)),
            "Volumes": await self._volumes.usage(self._volumes.list()),
            "BuildCache": await self._build_cache(),
        }
