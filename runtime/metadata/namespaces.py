"""Namespaces (containerd's meaning): isolation of every other record."""
from __future__ import annotations

import json
import sqlite3
import time

from pydantic import BaseModel

from runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.metadata.db import Database
from runtime.namespaces import validate

# Tables whose rows make a namespace non-empty.
_OWNED = ("images", "content", "leases", "snapshots", "containers")


class Namespace(BaseModel):
    name: str
    labels: dict[str, str] = {}


def ensure(conn: sqlite3.Connection, name: str) -> bool:
    """Create the namespace on first write, as containerd does; True if created."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO namespaces (name, labels, created) VALUES (?, '{}', ?)", (name, time.time())
    )
    return cur.rowcount > 0


def exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM namespaces WHERE name=?", (name,)).fetchone() is not None


def require_exists(conn: sqlite3.Connection, name: str) -> None:
    if not exists(conn, name):
        raise NotFound(f"namespace {name} not found")


class NamespaceStore:
    def __init__(self, db: Database, events: Exchange) -> None:
        self._db = db
        self._events = events

    async def list(self) -> list[Namespace]:
        rows = await self._db.run(lambda c: c.execute("SELECT name, labels FROM namespaces ORDER BY name").fetchall())
        return [Namespace(name=r["name"], labels=json.loads(r["labels"])) for r in rows]

    async def get(self, name: str) -> Namespace:
        validate(name)
        row = await self._db.run(
            lambda c: c.execute("SELECT name, labels FROM namespaces WHERE name=?", (name,)).fetchone()
        )
        if row is None:
            raise NotFound(f"namespace {name} not found")
        return Namespace(name=row["name"], labels=json.loads(row["labels"]))

    async def create(self, name: str, labels: dict[str, str] | None = None) -> Namespace:
        validate(name)
        ns = Namespace(name=name, labels=labels or {})

        def tx(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO namespaces (name, labels, created) VALUES (?,?,?)",
                    (name, json.dumps(ns.labels), time.time()),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"namespace {name} already exists") from None

        await self._db.run(tx)
        self._events.publish(name, topics.NAMESPACE_CREATE, {"name": name, "labels": ns.labels})
        return ns

    async def ensure(self, name: str) -> None:
        validate(name)
        if await self._db.run(lambda c: ensure(c, name)):
            self._events.publish(name, topics.NAMESPACE_CREATE, {"name": name, "labels": {}})

    async def set_labels(self, name: str, labels: dict[str, str]) -> Namespace:
        validate(name)

        def tx(conn: sqlite3.Connection) -> None:
            cur = conn.execute("UPDATE namespaces SET labels=? WHERE name=?", (json.dumps(labels), name))
            if cur.rowcount == 0:
                raise NotFound(f"namespace {name} not found")

        await self._db.run(tx)
        self._events.publish(name, topics.NAMESPACE_UPDATE, {"name": name, "labels": labels})
        return Namespace(name=name, labels=labels)

    async def delete(self, name: str) -> None:
        validate(name)

        def tx(conn: sqlite3.Connection) -> None:
            require_exists(conn, name)
            for table in _OWNED:
                if conn.execute(f"SELECT 1 FROM {table} WHERE namespace=? LIMIT 1", (name,)).fetchone():
                    raise FailedPrecondition(
                        f"namespace {name} must be empty, but it still has {table}"
                    )
            conn.execute("DELETE FROM namespaces WHERE name=?", (name,))

        await self._db.run(tx)
        self._events.publish(name, topics.NAMESPACE_DELETE, {"name": name})
