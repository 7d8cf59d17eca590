"""The build cache: each step's result image kept in the runtime under `<build>@<key>`.

A step's key digests its parent image's ID and everything that decides its result: the
instruction as evaluated (variables expanded), the environment and build args it sees, and for
COPY/ADD the checksum of the files copied. The same key means the same result, so a lookup is one
record read: from the engine's index of those records (engine.builder.cache_index) when it knows
the key, else from the runtime. The cache lives as long as the runtime's image store: across daemon
restarts, until `docker builder prune` drops the records and the runtime's GC frees what only they held.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.builder.cache_index import CacheIndex, IndexRuntime
from engine.builder.cache_prune import PruneRule
from engine.images.compose import NewLayer
from engine.images.model import BUILD_PREFIX, LocalImage, rfc3339
from engine.images.store import ImageService
from runtime.client import NotFound, RuntimeError_
from runtime.client.records import Image

STEP_LABEL = "io.pyengine.build.step"
USED_LABEL = "io.pyengine.build.used"
COUNT_LABEL = "io.pyengine.build.uses"

log = logging.getLogger("engine.builder.cache")


class CacheRuntime(IndexRuntime, Protocol):
    async def images(self, namespace: str | None = None) -> list[Image]: ...

    async def image(self, name: str, namespace: str | None = None) -> Image: ...

    async def put_image(self, name: str, target: dict[str, Any], labels: dict[str, str] | None = None,
                        namespace: str | None = None) -> Image: ...

    async def remove_image(self, name: str, namespace: str | None = None) -> None: ...


def continues(parent: LocalImage | None, source: LocalImage, created_by: str) -> tuple[LocalImage, NewLayer | None] | None:
    """Whether `source` is `parent` plus this step (and maybe more): then the step's layer in it."""
    history = list((parent.config.get("history") if parent is not None else None) or [])
    theirs = list(source.config.get("history") or [])
    if len(theirs) <= len(history):
        return None
    if [(h.get("created_by"), bool(h.get("empty_layer"))) for h in theirs[:len(history)]] != \
            [(h.get("created_by"), bool(h.get("empty_layer"))) for h in history]:
        return None
    ours = list(((parent.config.get("rootfs") if parent is not None else None) or {}).get("diff_ids") or [])
    their_ids = list((source.config.get("rootfs") or {}).get("diff_ids") or [])
    if their_ids[:len(ours)] != ours:
        return None
    entry = theirs[len(history)]
    if entry.get("created_by") != created_by:
        return None
    if entry.get("empty_layer"):
        return source, None
    if len(their_ids) <= len(ours) or len(source.layers) <= len(ours):
        return None
    return source, NewLayer(dict(source.layers[len(ours)]), their_ids[len(ours)])


def step_key(parent_id: str, step: dict[str, Any]) -> str:
    """The cache key of a step on `parent_id` ("" from scratch): a digest of a canonical JSON of both."""
    doc = json.dumps({"parent": parent_id, "step": step}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    key: str
    image: Image

    @property
    def description(self) -> str:
        return self.image.labels.get(STEP_LABEL, "")

    @property
    def last_used(self) -> float:
        try:
            return float(self.image.labels.get(USED_LABEL, ""))
        except ValueError:
            return self.image.updated

    @property
    def uses(self) -> int:
        raw = self.image.labels.get(COUNT_LABEL, "1")
        return int(raw) if raw.isdigit() else 1


@dataclass(frozen=True)
class Hit:
    key: str
    image: LocalImage
    record: Image


class BuildCache:
    def __init__(self, runtime: CacheRuntime, images: ImageService, namespace: str,
                 free_space: Callable[[], int]) -> None:
        self.runtime = runtime
        self._free_space = free_space  # the bytes free where the cache is kept
        self.images = images
        self.index = CacheIndex(runtime, namespace)
        self._counting: set[asyncio.Task[None]] = set()

    async def lookup(self, key: str) -> Hit | None:
        """The image a step with this key made before, if the cache still has it (and its content)."""
        name = BUILD_PREFIX + key
        record = self.index.get(name)
        if record is None:
            epoch = self.index.epoch
            try:
                record = await self.runtime.image(name)
            except NotFound:
                return None
            self.index.put(record, epoch)
        image = await self.images.from_record(record)
        if image is None:
            return None
        return Hit(key, image, record)

    def count(self, hit: Hit) -> None:
        """Count a hit on its record (`system df`'s LastUsedAt and UsageCount) in the background: nothing of the
        build waits on it; what reads the counts (entries) waits for those still being written."""
        task = asyncio.create_task(self._touch(hit), name=hit.record.name)
        self._counting.add(task)
        task.add_done_callback(self._counted)

    def _counted(self, task: asyncio.Task[None]) -> None:
        self._counting.discard(task)
        if not task.cancelled() and (e := task.exception()) is not None:
            log.warning("build cache: counting a hit on %s failed: %s", task.get_name(),
                        e.message if isinstance(e, RuntimeError_) else e)

    async def _touch(self, hit: Hit) -> None:
        record = hit.record
        labels = {**record.labels, USED_LABEL: str(time.time()), COUNT_LABEL: str(Entry(hit.key, record).uses + 1)}
        epoch = self.index.epoch
        self.index.put(await self.runtime.put_image(record.name, record.target.model_dump(), labels), epoch)

    async def remember(self, key: str, image: LocalImage, description: str) -> None:
        """Keep an existing image (a `cachefrom` one) as this step's result."""
        epoch = self.index.epoch
        self.index.put(await self.runtime.put_image(BUILD_PREFIX + key, dict(image.records[0].target),
                                                    self.labels(description)), epoch)

    @staticmethod
    def record_name(key: str) -> str:
        return BUILD_PREFIX + key

    @staticmethod
    def labels(description: str) -> dict[str, str]:
        return {STEP_LABEL: description, USED_LABEL: str(time.time()), COUNT_LABEL: "1"}

    async def entries(self) -> list[Entry]:
        await asyncio.gather(*self._counting, return_exceptions=True)
        return [Entry(i.name.removeprefix(BUILD_PREFIX), i) for i in await self.runtime.images()
                if i.name.startswith(BUILD_PREFIX)]

    async def usage(self) -> list[dict[str, Any]]:
        """`system df`'s BuildCache: one record per cached step."""
        return [record for _, record in await self._described(await self.images.images())]

    async def _described(self, images: list[LocalImage]) -> list[tuple[Entry, dict[str, Any]]]:
        by_name = {r.name: image for image in images for r in image.records}
        found = [(entry, by_name.get(entry.image.name)) for entry in await self.entries()]
        # A step's parent is the record of the step it was built on: each step adds one line to its image's history.
        key_of = {_history(image): entry.key[:25] for entry, image in found if image is not None}
        out = []
        for entry, image in found:
            layer = image.layers[-1] if image is not None and image.layers else {}
            lines = _history(image) if image is not None else ()
            parent = key_of.get(lines[:-1]) if lines else None
            out.append((entry, {
                "ID": entry.key[:25], "Parents": [parent] if parent else None, "Type": "regular",
                "Description": entry.description, "InUse": False,
                "Shared": image is not None and not image.intermediate,
                "Size": int(layer.get("size") or 0), "CreatedAt": rfc3339(entry.image.created),
                # A first use is the record's making: the time taken before it was written counts as then.
                "LastUsedAt": rfc3339(max(entry.last_used, entry.image.created)), "UsageCount": entry.uses,
            }))
        return out

    async def prune(self, rule: PruneRule) -> dict[str, Any]:
        """Drop the records `rule` chooses, least recently used first while a space option still wants room.

        Without `everything` the steps a named image was built through (its own and every one before it)
        keep their records, as BuildKit keeps cache still in use by an image unless pruning all (and dockerd
        20.10's classic builder keeps a tagged image's parents): the same build finds its cache again.
        """
        before = await self.images.stored_bytes()
        images = await self.images.images()
        by_name = {r.name: image for image in images for r in image.records}
        named = [image for image in images if not image.intermediate]
        described = await self._described(images)
        in_use = {entry.image.name for entry, _ in described
                  if (step := by_name.get(entry.image.name)) is not None and any(_feeds(step, i) for i in named)}
        total = sum(record["Size"] for _, record in described)
        target = rule.target(total, self._free_space())
        deleted = []
        for entry, record in sorted(described, key=lambda item: item[0].last_used):
            if target is not None and total <= target:
                break
            if rule.keep_since is not None and entry.last_used >= rule.keep_since:
                continue
            if (not rule.everything and entry.image.name in in_use) or not rule.chooses(record):
                continue
            if rule.floor and total - record["Size"] < rule.floor:
                continue
            self.index.drop(entry.image.name)
            try:
                await self.runtime.remove_image(entry.image.name)
            except NotFound:
                continue
            total -= record["Size"]
            deleted.append(entry.key[:25])
        reclaimed = max(0, before - await self.images.stored_bytes()) if deleted else 0
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _history(image: LocalImage) -> tuple[str, ...]:
    return tuple(json.dumps(line, sort_keys=True) for line in image.config.get("history") or [])


def _feeds(step: LocalImage, image: LocalImage) -> bool:
    """Whether `image` was built on `step`'s result: its history and its layers go on from the step's."""
    lines, ids = _history(step), list(step.diff_ids)
    return _history(image)[:len(lines)] == lines and list(image.diff_ids)[:len(ids)] == ids
