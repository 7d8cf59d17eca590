"""The storage budget: above the high watermark, unused images and build cache go, least recently used first,
until usage is back under the low watermark.

Candidates are images no container uses (dangling ones first, then by last use) and build cache
entries (by last use), in one order. An image's last use is kept here (`<data-root>/image-last-use.json`):
a container created from it, a pull, tag, load or import of it; before any is seen, its newest name's
time stands in. Each removal says so on the event bus as its manual twin does: an image's `untag`s and
`delete`, a build cache entry's `builder prune`, with `reason=storage-budget`. Images a container uses
are never candidates, stopped containers included.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.builder.cache import BuildCache, Entry
from engine.containers.store import ContainerStore
from engine.events import CONTAINER, IMAGE, Event, EventBus
from engine.images.model import LocalImage
from engine.storage.ledger import DiskLedger
from engine.storage.settings import StorageBudget
from runtime.client import NotFound

log = logging.getLogger("engine.storage.budget")

REASON = "storage-budget"


class Deleter(Protocol):
    async def delete_unused(self, image: LocalImage) -> bool: ...


@dataclass(frozen=True)
class Candidate:
    dangling: bool
    last_use: float
    image: LocalImage | None = None
    cache: Entry | None = None

    @property
    def order(self) -> tuple[int, float]:
        return (0 if self.dangling else 1, self.last_use)


class LastUse:
    """Image ID -> when it was last used, kept in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._times: dict[str, float] = {}
        self._dirty = False
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(path.read_text())
            self._times = {str(k): float(v) for k, v in doc.items()} if isinstance(doc, dict) else {}

    def touch(self, image_id: str, at: float | None = None) -> None:
        self._times[image_id] = at or time.time()
        self._dirty = True

    def of(self, image: LocalImage) -> float:
        return self._times.get(image.id) or max((r.updated for r in image.records), default=0.0)

    def save(self, present: set[str]) -> None:
        """Blocking; forgets images that are gone."""
        if not self._dirty and set(self._times) <= present:
            return
        self._times = {k: v for k, v in self._times.items() if k in present}
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(self._times))
        os.replace(tmp, self._path)
        self._dirty = False


class Budget:
    def __init__(self, settings: StorageBudget | None, ledger: DiskLedger, images: Deleter, cache: BuildCache,
                 store: ContainerStore, events: EventBus, last_use: LastUse) -> None:
        self.settings = settings
        self._ledger = ledger
        self._images = images
        self._cache = cache
        self._store = store
        self._events = events
        events.observe(self.note_use)
        self.last_use = last_use
        self._lock = asyncio.Lock()

    def note_use(self, ev: Event) -> None:
        """An event observer (called as each event is published): keep images' last-use times."""
        if ev.type == CONTAINER and ev.action in ("create", "start"):
            c = self._store.find(ev.actor_id)
            if c is not None:
                self.last_use.touch(c.image_id)
        elif ev.type == IMAGE and ev.action in ("pull", "tag", "load", "import", "push", "save") \
                and ev.actor_id.startswith("sha256:"):
            self.last_use.touch(ev.actor_id)

    async def run(self) -> None:
        """Check after every change the ledger hears of, and on the interval (the ledger's sweeps)."""
        if self.settings is None:
            return
        while True:
            self._ledger.changed.clear()
            try:
                await self.enforce()
            except Exception:  # one failed round must not end the budget: log it, try at the next change
                log.exception("storage budget round failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ledger.changed.wait(), self.settings.interval)
            await asyncio.sleep(0.2)  # let a burst of changes settle into one round

    async def enforce(self) -> list[dict[str, Any]]:
        """One round: if usage is above the high mark, collect down to the low mark; what went, in order."""
        settings = self.settings
        if settings is None:
            return []
        async with self._lock:
            total = await self._ledger.total()
            state = await self._ledger.image_state()
            await asyncio.to_thread(self.last_use.save, {i.id for i in state.images})
            if total <= settings.high_bytes:
                return []
            log.info("storage usage %d above the high mark %d: collecting down to %d", total, settings.high_bytes,
                     settings.low_bytes)
            removed: list[dict[str, Any]] = []
            for cand in sorted(await self._candidates(), key=lambda c: c.order):
                if total <= settings.low_bytes:
                    break
                before = total
                if not await self._remove(cand):
                    continue
                self._ledger.images_changed()
                total = await self._ledger.total()
                removed.append({"id": cand.image.id if cand.image else (cand.cache.key if cand.cache else ""),
                                "reclaimed": max(0, before - total)})
            if total > settings.low_bytes:
                log.warning("storage usage %d is still above the low mark %d: nothing unused is left to collect",
                            total, settings.low_bytes)
            return removed

    async def _candidates(self) -> list[Candidate]:
        state = await self._ledger.image_state()
        used = self._store.images_in_use()
        out = [Candidate(image.dangling, self.last_use.of(image), image=image) for image in state.images
               if not image.intermediate and image.id not in used]
        # A cache entry's record may be the last name of an image a container was created from (by its ID).
        image_of = {r.name: image.id for image in state.images for r in image.records}
        out += [Candidate(False, e.last_used, cache=e) for e in await self._cache.entries()
                if image_of.get(e.image.name) not in used]
        return out

    async def _remove(self, cand: Candidate) -> bool:
        if cand.image is not None:
            return await self._images.delete_unused(cand.image)
        assert cand.cache is not None
        total_before = await self._ledger.total()
        try:
            await self._cache.runtime.remove_image(cand.cache.image.name)
        except NotFound:
            return False
        self._ledger.images_changed()
        reclaimed = max(0, total_before - await self._ledger.total())
        self._events.publish("builder", "prune", cand.cache.key[:25], {"reclaimed": str(reclaimed), "reason": REASON})
        return True
