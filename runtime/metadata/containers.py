"""Container records: what to run (image, rootfs snapshot, OCI spec, runtime), not the running process."""
from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import Any

from pydantic import BaseModel, Field

from runtime.errors import AlreadyExists, InvalidArgument, NotFound
from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.metadata import namespaces
from runtime.metadata.db import Database
from runtime.namespaces import require_namespace

# Same rule as containerd's identifiers: it becomes a path component and a runc id.
_ID_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,75})$")


def validate_id(container_id: str) -> str:
    if not isinstance(container_id, str) or not _ID_RE.match(container_id):
        raise InvalidArgument(
            f"invalid container id {container_id!r}: 1 to 76 letters, digits, '_', '.' or '-', starting alphanumeric"
        )
    return container_id


class Container(BaseModel):
    id: str
    image: str
    snapshotter: str
    snapshot_key: str
    runtime: str
    spec: dict[str, Any]
    labels: dict[str, str] = Field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0


def _row(r: sqlite3.Row) -> Container:
    return Container(id=r["id"], image=r["image"], snapshotter=r["snapshotter"], snapshot_key=r["snapshot_key"],
                     runtime=r["runtime"], spec=json.loads(r["spec"]), labels=json.loads(r["labels"]),
                     created=r["created"], updated=r["updated"])


class ContainerStore:
    def __init__(self, db: Database, events: Exchange) -> None:
        self._db = db
        self._events = events

    async def create(self, c: Container) -> Container:
        ns = require_namespace()
        validate_id(c.id)
        now = time.time()
        c.created = c.updated = now

        def tx(conn: sqlite3.Connection) -> None:
            namespaces.ensure(conn, ns)
            try:
                conn.execute(
                    "INSERT INTO containers (namespace, id, image, snapshotter, snapshot_key, runtime, spec, labels,"
                    " created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (ns, c.id, c.image, c.snapshotter, c.snapshot_key, c.runtime, json.dumps(c.spec),
                     json.dumps(c.labels), now, now),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"container {c.id} already exists") from None

        await self._db.run(tx)
        self._events.publish(ns, topics.CONTAINER_CREATE, {"id": c.id, "image": c.image, "runtime": c.runtime})
        return c

    async def get(self, container_id: str) -> Container:
        ns = require_namespace()
        row = await self._db.run(lambda conn: conn.execute(
            "SELECT * FROM containers WHERE namespace=? AND id=?", (ns, container_id)).fetchone())
        if row is None:
            raise NotFound(f"container {container_id} not found")
        return _row(row)

    async def list(self) -> list[Container]:
        ns = require_namespace()
        rows = await self._db.run(lambda conn: conn.execute(
            "SELECT * FROM containers WHERE namespace=? ORDER BY created", (ns,)).fetchall())
        return [_row(r) for r in rows]

    async def set_labels(self, container_id: str, labels: dict[str, str]) -> Container:
        c = await self._set(container_id, "labels", labels)
        self._events.publish(require_namespace(), topics.CONTAINER_UPDATE, {"id": c.id, "labels": labels})
        return c

    async def set_spec(self, container_id: str, spec: dict[str, Any]) -> Container:
        c = await self._set(container_id, "spec", spec)
        self._events.publish(require_namespace(), topics.CONTAINER_UPDATE, {"id": c.id, "fields": ["spec"]})
        return c

    async def _set(self, container_id: str, column: str, value: Any) -> Container:
        ns = require_namespace()

        def tx(conn: sqlite3.Connection) -> sqlite3.Row:
            # `column` is one of this module's names, never the caller's text.
            cur = conn.execute(f"UPDATE containers SET {column}=?, updated=? WHERE namespace=? AND id=?",
                               (json.dumps(value), time.time(), ns, container_id))
            if cur.rowcount == 0:
                raise NotFound(f"container {container_id} not found")
            row: sqlite3.Row = conn.execute("SELECT * FROM containers WHERE namespace=? AND id=?",
                                            (ns, container_id)).fetchone()
            return row

        return _row(await self._db.run(tx))

    async def delete(self, container_id: str) -> None:
        ns = require_namespace()

        def tx(conn: sqlite3.Connection) -> None:
            cur = conn.execute("DELETE FROM containers WHERE namespace=? AND id=?", (ns, container_id))
            if cur.rowcount == 0:
                raise NotFound(f"container {container_id} not found")

        await self._db.run(tx)
        self._events.publish(ns, topics.CONTAINER_DELETE, {"id": container_id})
