"""Garbage collection: the only code that deletes blobs and committed snapshots.

Mark from roots (image targets, live leases, active and view snapshots) along
the explicit edges recorded at write time (content_refs), then sweep records,
bytes on disk and snapshots that nothing reaches. Holds the GC lock so no
commit can land between mark and sweep.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass

from runtime.content.local import LocalStore
from runtime.metadata.db import Database
from runtime.snapshots.snapshotter import Info, Kind, Snapshotter

log = logging.getLogger("runtime.gc")

# How long an ingest may sit unwritten before a collection drops it (a killed pull resumes long before).
ABANDONED_INGEST = 3600.0


@dataclass
class GCResult:
    content_records: int = 0
    blobs: int = 0
    snapshots: int = 0
    leases_expired: int = 0
    ingests: int = 0
    seconds: float = 0.0


class Collector:
    def __init__(self, db: Database, store: LocalStore, snapshotters: dict[str, Snapshotter],
                 lock: asyncio.Lock) -> None:
        self._db = db
        self._store = store
        self._snapshotters = snapshotters
        self.lock = lock

    async def collect(self) -> GCResult:
        started = time.monotonic()
        result = GCResult()
        async with self.lock:
            keep_snapshots, keep_blobs = await self._db.run(lambda c: self._mark_and_sweep_records(c, result))
            for digest in await asyncio.to_thread(self._store.walk):
                if digest not in keep_blobs:
                    await asyncio.to_thread(self._store.delete, digest)
                    result.blobs += 1
            for name, backend in self._snapshotters.items():
                result.snapshots += await self._sweep_snapshots(name, backend, keep_snapshots)
            result.ingests = len(await asyncio.to_thread(self._store.drop_abandoned, ABANDONED_INGEST))
        result.seconds = time.monotonic() - started
        log.info("gc content_records=%d blobs=%d snapshots=%d leases_expired=%d ingests=%d seconds=%.3f",
                 result.content_records, result.blobs, result.snapshots, result.leases_expired, result.ingests,
                 result.seconds)
        return result

    def _mark_and_sweep_records(self, conn: sqlite3.Connection, result: GCResult) -> tuple[set[str], set[str]]:
        now = time.time()
        expired = conn.execute(
            "SELECT namespace, id FROM leases WHERE expires IS NOT NULL AND expires < ?", (now,)
        ).fetchall()
        for r in expired:
            conn.execute("DELETE FROM lease_resources WHERE namespace=? AND lease=?", (r["namespace"], r["id"]))
            conn.execute("DELETE FROM leases WHERE namespace=? AND id=?", (r["namespace"], r["id"]))
        result.leases_expired = len(expired)

        keep_snapshots: set[str] = set()  # '<snapshotter>/<namespace>/<key>'
        for ns_row in conn.execute("SELECT name FROM namespaces").fetchall():
            ns = ns_row["name"]
            marked: set[str] = set()
            todo = [r["digest"] for r in conn.execute("SELECT digest FROM images WHERE namespace=?", (ns,))]
            for r in conn.execute("SELECT kind, target FROM lease_resources WHERE namespace=?", (ns,)):
                if r["kind"] == "content":
                    todo.append(r["target"])
                elif r["kind"] == "snapshot":
                    snapshotter, key = r["target"].split("/", 1)
                    keep_snapshots.add(f"{snapshotter}/{ns}/{key}")
            while todo:
                digest = todo.pop()
                if digest in marked:
                    continue
                marked.add(digest)
                for edge in conn.execute(
                    "SELECT kind, target FROM content_refs WHERE namespace=? AND digest=?", (ns, digest)
                ):
                    if edge["kind"] == "content":
                        todo.append(edge["target"])
                    else:
                        snapshotter, key = edge["target"].split("/", 1)
                        keep_snapshots.add(f"{snapshotter}/{ns}/{key}")
            for r in conn.execute("SELECT digest FROM content WHERE namespace=?", (ns,)).fetchall():
                if r["digest"] not in marked:
                    conn.execute("DELETE FROM content WHERE namespace=? AND digest=?", (ns, r["digest"]))
                    conn.execute("DELETE FROM content_refs WHERE namespace=? AND digest=?", (ns, r["digest"]))
                    result.content_records += 1
        keep_blobs = {r["digest"] for r in conn.execute("SELECT DISTINCT digest FROM content")}
        return keep_snapshots, keep_blobs

    async def _sweep_snapshots(self, name: str, backend: Snapshotter, keep: set[str]) -> int:
        infos = {i.key: i for i in await backend.walk()}
        live: set[str] = set()

        def mark(info: Info | None) -> None:
            while info is not None and info.key not in live:
                live.add(info.key)
                info = infos.get(info.parent) if info.parent else None

        for key, info in infos.items():
            if info.kind != Kind.COMMITTED or f"{name}/{key}" in keep:
                mark(info)

        def depth(info: Info) -> int:
            d = 0
            while info.parent and info.parent in infos:
                info = infos[info.parent]
                d += 1
            return d

        dead = sorted((i for k, i in infos.items() if k not in live), key=depth, reverse=True)
        for info in dead:
            await backend.remove(info.key)
            ns, key = info.key.split("/", 1)
            await self._db.run(lambda c: c.execute(
                "DELETE FROM snapshots WHERE namespace=? AND snapshotter=? AND key=?", (ns, name, key)))
        return len(dead)
