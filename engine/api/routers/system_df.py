"""docker system df: what images, containers and volumes take on disk."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from engine.api.app import Router
from engine.api.responses import json_response
from engine.api.routers.containers import container_summary
from engine.backend import Backend
from engine.containers.store import Container
from engine.images import views
from runtime import client as rt


def register(r: Router, b: Backend) -> None:
    async def df(_: web.Request) -> web.Response:
        images = await b.images.images()
        containers = b.containers.all()
        users: dict[str, int] = {}
        for c in containers:
            users[c.image_id] = users.get(c.image_id, 0) + 1

        async def container_entry(c: Container) -> dict[str, Any]:
            entry = container_summary(b, c)
            entry["SizeRw"] = 0
            with contextlib.suppress(rt.RuntimeError_):
                record = await b.runtime.container(c.id)
                entry["SizeRw"] = (await b.runtime.snapshot_usage(record["snapshotter"],
                                                                  record["snapshot_key"]))["size"]
            entry["SizeRootFs"] = entry["SizeRw"] + next((i.size for i in images if i.id == c.image_id), 0)
            return entry

        image_entries = []
        for image in images:
            entry = views.summary(image, image.named)
            entry["Containers"] = users.get(image.id, 0)
            entry["SharedSize"] = 0
            image_entries.append(entry)
        return json_response({
            "LayersSize": sum(i.size for i in images),
            "Images": image_entries,
            "Containers": await asyncio.gather(*(container_entry(c) for c in containers)),
            "Volumes": await b.volumes.usage(b.volumes.list()),
            "BuildCache": [],
        })

    async def build_prune(_: web.Request) -> web.Response:
        # No builder, so no build cache: `docker system prune` asks anyway.
        return json_response({"CachesDeleted": [], "SpaceReclaimed": 0})

    r.add("GET", "/system/df", df)
    r.add("POST", "/build/prune", build_prune)
