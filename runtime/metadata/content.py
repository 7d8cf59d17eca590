"""Namespaced view of the content store.

Blobs are stored once on disk; a namespace sees a blob only once it has its own
record of it (created when it ingests the blob, or shares one that another
namespace already holds, since knowing the digest proves nothing is leaked that
the writer did not already have).
"""
from __future__ import annotations

import asyncio
import builtins
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from runtime.content.local import LocalStore, LocalWriter
from runtime.content.store import ContentInfo, IngestStatus
from runtime.errors import InvalidArgument, NotFound
from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.metadata import leases, namespaces
from runtime.metadata.db import Database
from runtime.namespaces import require_namespace
from runtime.oci import validate_digest


def _info(r: sqlite3.Row) -> ContentInfo:
    return ContentInfo(digest=r["digest"], size=r["size"], labels=json.loads(r["labels"]),
                       created=r["created"], updated=r["updated"])


class ContentService:
    def __init__(self, db: Database, store: LocalStore, events: Exchange, gc_lock: asyncio.Lock) -> None:
        self._db = db
        self.store = store
        self._events = events
        # Held from "bytes on disk" to "record written" so GC never sees the gap.
        self._gc_lock = gc_lock

    async def info(self, digest: str) -> ContentInfo:
        ns = require_namespace()
        validate_digest(digest)
        row = await self._db.run(
            lambda c: c.execute("SELECT * FROM content WHERE namespace=? AND digest=?", (ns, digest)).fetchone()
        )
        if row is None:
            raise NotFound(f"content {digest} not found")
        return _info(row)

    async def has(self, digest: str) -> bool:
        try:
            await self.info(digest)
        except NotFound:
            return False
        return True

    async def list(self) -> list[ContentInfo]:
        ns = require_namespace()

        def tx(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            namespaces.require_exists(conn, ns)
            return conn.execute("SELECT * FROM content WHERE namespace=? ORDER BY created", (ns,)).fetchall()

        return [_info(r) for r in await self._db.run(tx)]

    async def set_labels(self, digest: str, labels: dict[str, str]) -> ContentInfo:
        ns = require_namespace()
        validate_digest(digest)

        def tx(conn: sqlite3.Connection) -> sqlite3.Row:
            cur = conn.execute(
                "UPDATE content SET labels=?, updated=? WHERE namespace=? AND digest=?",
                (json.dumps(labels), time.time(), ns, digest),
            )
            if cur.rowcount == 0:
                raise NotFound(f"content {digest} not found")
            row: sqlite3.Row = conn.execute("SELECT * FROM content WHERE namespace=? AND digest=?",
                                            (ns, digest)).fetchone()
            return row

        return _info(await self._db.run(tx))

    async def set_label(self, digest: str, key: str, value: str) -> None:
        ns = require_namespace()

        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT labels FROM content WHERE namespace=? AND digest=?", (ns, digest)).fetchone()
            if row is None:
                raise NotFound(f"content {digest} not found")
            labels = json.loads(row["labels"])
            labels[key] = value
            conn.execute("UPDATE content SET labels=?, updated=? WHERE namespace=? AND digest=?",
                         (json.dumps(labels), time.time(), ns, digest))

        await self._db.run(tx)

    def path(self, digest: str) -> Path:
        return self.store.path(digest)

    async def read(self, digest: str) -> bytes:
        await self.info(digest)
        return await asyncio.to_thread(self.store.path(digest).read_bytes)

    async def read_document(self, digest: str, what: str) -> dict[str, Any]:
        """A stored manifest, index or config: InvalidArgument naming `what` unless it is a JSON object."""
        try:
            doc = json.loads(await self.read(digest))
        except ValueError:
            raise InvalidArgument(f"{what} {digest} is not valid JSON") from None
        if not isinstance(doc, dict):
            raise InvalidArgument(f"{what} {digest} is not a JSON object")
        return doc

    async def hold(self, digest: str, refs: Iterable[tuple[str, str]] = ()) -> bool:
        """For a blob this namespace already has: add `refs` and hold it under the current lease, as a write
        would, so that the end of whoever else held it (an interrupted pull's lease) cannot take it from under
        the caller; False if the namespace does not have it."""
        ns = require_namespace()
        refs = list(refs)

        def tx(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM content WHERE namespace=? AND digest=?", (ns, digest)).fetchone() is None:
                return False
            for kind, target in refs:
                conn.execute(
                    "INSERT OR IGNORE INTO content_refs (namespace, digest, kind, target) VALUES (?,?,?,?)",
                    (ns, digest, kind, target),
                )
            leases.record(conn, ns, "content", digest)
            return True

        async with self._gc_lock:
            return bool(await self._db.run(tx))

    async def share(self, digest: str, refs: Iterable[tuple[str, str]] = ()) -> bool:
        """Record a blob that exists on disk in this namespace; False if it is not on disk."""
        ns = require_namespace()
        async with self._gc_lock:
            if not await asyncio.to_thread(self.store.exists, digest):
                return False
            size = await asyncio.to_thread(self.store.size, digest)
            await self._record(ns, digest, size, refs)
        return True

    async def writer(self, ref: str, expected: str | None, total: int) -> LocalWriter:
        require_namespace()
        return await asyncio.to_thread(self.store.writer, ref, expected, total)

    async def commit(self, writer: LocalWriter, size: int, expected: str,
                     refs: Iterable[tuple[str, str]] = ()) -> None:
        """Verify and publish the writer's bytes, then record them (with GC refs)."""
        ns = require_namespace()
        async with self._gc_lock:
            await asyncio.to_thread(writer.commit, size, expected)
            await self._record(ns, expected, size, refs)

    async def _record(self, ns: str, digest: str, size: int, refs: Iterable[tuple[str, str]]) -> None:
        now = time.time()
        refs = list(refs)

        def tx(conn: sqlite3.Connection) -> bool:
            namespaces.ensure(conn, ns)
            cur = conn.execute(
                "INSERT OR IGNORE INTO content (namespace, digest, size, labels, created, updated)"
                " VALUES (?,?,?,'{}',?,?)",
                (ns, digest, size, now, now),
            )
            for kind, target in refs:
                conn.execute(
                    "INSERT OR IGNORE INTO content_refs (namespace, digest, kind, target) VALUES (?,?,?,?)",
                    (ns, digest, kind, target),
                )
            leases.record(conn, ns, "content", digest)
            return cur.rowcount > 0

        if await self._db.run(tx):
            self._events.publish(ns, topics.CONTENT_CREATE, {"digest": digest, "size": size})

    async def add_refs(self, digest: str, refs: Iterable[tuple[str, str]]) -> None:
        ns = require_namespace()
        refs = list(refs)

        def tx(conn: sqlite3.Connection) -> None:
            for kind, target in refs:
                conn.execute(
                    "INSERT OR IGNORE INTO content_refs (namespace, digest, kind, target) VALUES (?,?,?,?)",
                    (ns, digest, kind, target),
                )

        await self._db.run(tx)

    async def delete(self, digest: str) -> None:
        """Drop this namespace's record; GC removes the bytes once no namespace has it."""
        ns = require_namespace()
        validate_digest(digest)

        def tx(conn: sqlite3.Connection) -> None:
            cur = conn.execute("DELETE FROM content WHERE namespace=? AND digest=?", (ns, digest))
            if cur.rowcount == 0:
                raise NotFound(f"content {digest} not found")
            conn.execute("DELETE FROM content_refs WHERE namespace=? AND digest=?", (ns, digest))

        await self._db.run(tx)
        self._events.publish(ns, topics.CONTENT_DELETE, {"digest": digest})

    async def ingests(self) -> builtins.list[IngestStatus]:
        return await asyncio.to_thread(self.store.ingests)

    async def abort(self, ref: str) -> None:
        await asyncio.to_thread(self.store.abort, ref)
