"""Logs that outlive their container: a removed container's log files, kept for a window, then deleted.

At removal the driver's files move (a rename, same filesystem) from `<data-root>/containers/<id>/` to
`<data-root>/removed-logs/<id>/` beside `removed.json`: the container's last record (what inspect and the
driver's reader need) and when it was removed. The index is in memory, rebuilt from those files at start,
so a window spans engine restarts; it ends `removed-logs-retention` after the removal, as the setting is now. A name or ID prefix finds the most recently removed holder; a live
container always wins, since lookups ask the container records first.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.logs import rotation
from engine.storage.settings import AUTO_REMOVED

log = logging.getLogger("engine.logs.retention")

RECORD = "removed.json"


@dataclass
class Removed:
    """A removed container as its logs remember it (meets the log service's LoggedContainer)."""

    id: str
    name: str
    image: str
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    record: dict[str, Any]  # the container's last record, for inspect
    removed_at: float
    size: int  # bytes of its files, counted against the storage budget
    log_path: str | None = None  # no capture left: the driver's files are all there is

    @property
    def path(self) -> str:
        return str(self.record.get("Path") or "")

    @property
    def args(self) -> list[str]:
        return [str(a) for a in self.record.get("Args") or []]


def inspectable(found: Removed, ref: str, mode: bool | str) -> bool:
    """Whether inspect answers for the removed container `found`, asked for as `ref`, under removed-logs-inspect.

    The default (AUTO_REMOVED) keeps dockerd's 404 for containers removed on request, which is how clients see
    that a removal they asked for is done, and for names, which a new container may take at once; what
    `run --rm` removed by itself stays inspectable by ID, so `docker logs <id>` can read a failed run's output.
    """
    if mode == AUTO_REMOVED:
        by_id = found.id.startswith(ref) and found.name != ref.removeprefix("/")
        return by_id and bool(found.host_config.get("AutoRemove"))
    return bool(mode)


def _tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


class RemovedLogs:
    def __init__(self, root: Path, window: float) -> None:
        self.root = root
        self.window = window
        self._by_id: dict[str, Removed] = {}
        self._changed = asyncio.Event()
        if window > 0:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._load()
        else:
            shutil.rmtree(root, ignore_errors=True)  # turned off: what was kept goes now

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def _load(self) -> None:
        for entry in self.root.iterdir():
            try:
                doc = json.loads((entry / RECORD).read_text())
                removed = Removed(**doc)
            except (OSError, ValueError, TypeError) as e:
                log.warning("dropping unreadable removed logs %s: %s", entry, e)
                shutil.rmtree(entry, ignore_errors=True)
                continue
            self._by_id[removed.id] = removed

    def directory(self, cid: str) -> Path:
        return self.root / cid

    def keep(self, source: Path, entry: Path, fields: dict[str, Any], record: dict[str, Any]) -> Removed | None:
        """Move the driver's file `entry` (under `source`) and its rotated files into the container's retained
        dir; blocking, run in a thread."""
        present = [f for f in [*rotation.rotated(entry), entry] if f.exists()]
        if not present:
            return None
        target = self.directory(fields["id"])
        tmp = self.root / f".{fields['id']}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for f in present:
            dest = tmp / f.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(f, dest)
        now = time.time()
        removed = Removed(**fields, record=record, removed_at=now, size=_tree_bytes(tmp))
        (tmp / RECORD).write_text(json.dumps(removed.__dict__))
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)
        self._by_id[removed.id] = removed
        self._changed.set()
        return removed

    def find(self, ref: str) -> Removed | None:
        """By full ID, name (with or without its slash), then unique ID prefix; expired entries are gone."""
        live = [r for r in self._by_id.values() if not self._expired(r)]
        if (hit := self._by_id.get(ref)) is not None and not self._expired(hit):
            return hit
        name = ref.removeprefix("/")
        named = [r for r in live if r.name == name]
        if named:
            return max(named, key=lambda r: r.removed_at)
        prefixed = [r for r in live if r.id.startswith(ref)] if ref else []
        return prefixed[0] if len(prefixed) == 1 else None

    def _expired(self, r: Removed) -> bool:
        # From the window in force now: an operator who shortens it sees older logs go sooner.
        return r.removed_at + self.window <= time.time()

    def bytes(self) -> int:
        return sum(r.size for r in self._by_id.values())

    def drop(self, cid: str) -> None:
        """Blocking: the retained files of `cid` go now."""
        if self._by_id.pop(cid, None) is not None:
            shutil.rmtree(self.directory(cid), ignore_errors=True)
            log.info("removed the retained logs of container=%s", cid)

    async def run(self) -> None:
        """Delete each container's logs when its window ends; owned by the daemon's background work."""
        if not self.enabled:
            return
        while True:
            for r in [r for r in self._by_id.values() if self._expired(r)]:
                await asyncio.to_thread(self.drop, r.id)
            nxt = min((r.removed_at + self.window for r in self._by_id.values()), default=time.time() + 3600)
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.05, nxt - time.time()))
