"""Namespaced snapshots over a backend snapshotter.

Backend keys are '<namespace>/<key>' (namespace names cannot contain '/'), so
each namespace has its own key space while the backend stays namespace-blind.
Every snapshot also has a row here, written before the backend acts, so the
collector always knows who owns what and a lease covers it from the start.
"""
from __future__ import annotations

import asyncio
import builtins
import json
import logging
import sqlite3
import time

from runtime.errors import NotFound, RuntimeError_
from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.metadata import leases, namespaces
from runtime.metadata.db import Database
from runtime.mount import Mount
from runtime.namespaces import require_namespace
from runtime.snapshots.snapshotter import Info, Snapshotter, Usage


log = logging.getLogger("runtime.snapshots")

# The keys of snapshots made for one operation within the runtime (runtime/transfer/unpack.py and
# early_unpack.py, runtime/diff/compare.py, runtime/rootfs/changes.py): none outlives the runtime's run.
TEMPORARY_PREFIXES = ("extract-", "compare-", "changes-")


def _backend_key(ns: str, key: str) -> str:
    return f"{ns}/{key}"


def _strip(ns: str, info: Info) -> Info:
    prefix = ns + "/"
    return info.model_copy(update={
        "name": info.name[len(prefix):] if info.name.startswith(prefix) else info.name,
        "parent": info.parent[len(prefix):] if info.parent and info.parent.startswith(prefix) else info.parent,
    })


class SnapshotService:
    def __init__(self, name: str, backend: Snapshotter, db: Database, events: Exchange,
                 gc_lock: asyncio.Lock) -> None:
        self.name = name
        self.backend = backend
        self._db = db
        self._events = events
        self._gc_lock = gc_lock

    async def _add_row(self, ns: str, key: str, labels: dict[str, str] | None) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            namespaces.ensure(conn, ns)
            conn.execute(
                "INSERT OR REPLACE INTO snapshots (namespace, snapshotter, key, labels, created) VALUES (?,?,?,?,?)",
                (ns, self.name, key, json.dumps(labels or {}), time.time()),
            )
            leases.record(conn, ns, "snapshot", f"{self.name}/{key}")

        await self._db.run(tx)

    async def _drop_row(self, ns: str, key: str) -> None:
        await self._db.run(lambda c: c.execute(
            "DELETE FROM snapshots WHERE namespace=? AND snapshotter=? AND key=?", (ns, self.name, key)))

    async def stat(self, key: str) -> Info:
        ns = require_namespace()
        return _strip(ns, await self.backend.stat(_backend_key(ns, key)))

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except NotFound:
            return False
        return True

    async def _create(self, kind: str, key: str, parent: str | None, labels: dict[str, str] | None) -> list[Mount]:
        ns = require_namespace()
        bparent = _backend_key(ns, parent) if parent else None
        async with self._gc_lock:
            await self._add_row(ns, key, labels)
            try:
                if kind == "view":
                    mounts = await self.backend.view(_backend_key(ns, key), bparent, labels)
                else:
                    mounts = await self.backend.prepare(_backend_key(ns, key), bparent, labels)
            except BaseException:
                await self._drop_row(ns, key)
                raise
        self._events.publish(ns, topics.SNAPSHOT_PREPARE,
                             {"key": key, "parent": parent or "", "snapshotter": self.name})
        return mounts

    async def prepare(self, key: str, parent: str | None = None, labels: dict[str, str] | None = None) -> list[Mount]:
        return await self._create("prepare", key, parent, labels)

    async def view(self, key: str, parent: str | None, labels: dict[str, str] | None = None) -> list[Mount]:
        return await self._create("view", key, parent, labels)

    async def mounts(self, key: str) -> list[Mount]:
        ns = require_namespace()
        return await self.backend.mounts(_backend_key(ns, key))

    async def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        ns = require_namespace()
        async with self._gc_lock:
            await self._add_row(ns, name, labels)
            try:
                await self.backend.commit(_backend_key(ns, name), _backend_key(ns, key), labels)
            except BaseException:
                await self._drop_row(ns, name)
                raise
            await self._drop_row(ns, key)
        self._events.publish(ns, topics.SNAPSHOT_COMMIT, {"key": key, "name": name, "snapshotter": self.name})

    async def remove(self, key: str) -> None:
        ns = require_namespace()
        await self.backend.remove(_backend_key(ns, key))
        await self._drop_row(ns, key)
        self._events.publish(ns, topics.SNAPSHOT_REMOVE, {"key": key, "snapshotter": self.name})

    async def remove_leftover_temporaries(self) -> list[str]:
        """At start: the snapshots the runtime makes for the span of one operation (a layer being unpacked, a
        view to compare or to list changes) that a killed runtime left. Nothing else names them and active
        snapshots are GC roots: they, and the layers under them, would stay for good."""
        removed = []
        for info in await self.backend.walk():
            ns, _, key = info.key.partition("/")
            if key.startswith(TEMPORARY_PREFIXES):
                try:
                    await self.backend.remove(info.key)
                except RuntimeError_ as e:  # the start goes on; the collector keeps it as any active snapshot
                    log.warning("could not remove snapshot=%s left by an unfinished operation: %s", info.key,
                                e.message)
                    continue
                await self._drop_row(ns, key)
                removed.append(info.key)
        return removed

    async def list(self) -> list[Info]:
        ns = require_namespace()
        prefix = ns + "/"
        return [_strip(ns, i) for i in await self.backend.walk() if i.key.startswith(prefix)]

    async def usage(self, key: str) -> Usage:
        ns = require_namespace()
        return await self.backend.usage(_backend_key(ns, key))

    async def usages(self, keys: builtins.list[str]) -> dict[str, Usage]:
        ns = require_namespace()
        found = await self.backend.usages([_backend_key(ns, key) for key in keys])
        return {key: found[_backend_key(ns, key)] for key in keys if _backend_key(ns, key) in found}
