"""Leases: hold content and snapshots against GC while work is in flight.

The current lease is set once per request (header at the API edge, or by the
pull itself) and every store that creates something records it under the lease
in the same transaction.
"""
from __future__ import annotations

import json
import secrets
import sqlite3
import time
from contextvars import ContextVar

from pydantic import BaseModel

from runtime.errors import AlreadyExists, InvalidArgument, NotFound
from runtime.metadata import namespaces
from runtime.metadata.db import Database
from runtime.namespaces import require_namespace

_current: ContextVar[str | None] = ContextVar("pyengine_lease", default=None)


def current_lease() -> str | None:
    return _current.get()


def set_lease(lease: str | None) -> object:
    return _current.set(lease)


def reset_lease(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def record(conn: sqlite3.Connection, namespace: str, kind: str, target: str) -> None:
    """Attach a resource to the current lease, inside the caller's transaction."""
    lease = _current.get()
    if lease is None:
        return
    if conn.execute("SELECT 1 FROM leases WHERE namespace=? AND id=?", (namespace, lease)).fetchone() is None:
        # The lease ended (its pull failed) while a shared download finished:
        # the resource is simply unheld and the collector may take it.
        return
    conn.execute(
        "INSERT OR IGNORE INTO lease_resources (namespace, lease, kind, target) VALUES (?,?,?,?)",
        (namespace, lease, kind, target),
    )


class Lease(BaseModel):
    id: str
    labels: dict[str, str] = {}
    created: float
    expires: float | None = None


# The labels of the leases the runtime takes for its own operations. Such an operation ends with the process
# that ran it: a lease of one still there at the next start holds what an interrupted operation left (layers a
# pull had put under it, images it meant to reuse), which nothing would release before the lease expired.
PULL_LABEL = "io.pyengine.pull"
IMPORT_LABEL = "io.pyengine.import"
UNPACK_LABEL = "io.pyengine.unpack"
_OPERATIONS = (PULL_LABEL, IMPORT_LABEL, UNPACK_LABEL)


class LeaseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def drop_interrupted(self) -> list[str]:
        """At start, in every namespace: the leases of the previous process's own operations; their ids."""

        def tx(conn: sqlite3.Connection) -> list[str]:
            gone = [(r["namespace"], r["id"]) for r in conn.execute("SELECT namespace, id, labels FROM leases")
                    if any(label in json.loads(r["labels"]) for label in _OPERATIONS)]
            for ns, lease_id in gone:
                conn.execute("DELETE FROM leases WHERE namespace=? AND id=?", (ns, lease_id))
                conn.execute("DELETE FROM lease_resources WHERE namespace=? AND lease=?", (ns, lease_id))
            return [f"{ns}/{lease_id}" for ns, lease_id in gone]

        return await self._db.run(tx)

    async def create(self, id: str | None = None, labels: dict[str, str] | None = None,
                     expire_after: float | None = None) -> Lease:
        ns = require_namespace()
        lease_id = id or f"lease-{secrets.token_hex(8)}"
        if not lease_id or len(lease_id) > 128:
            raise InvalidArgument("lease id must be 1 to 128 characters")
        now = time.time()
        lease = Lease(id=lease_id, labels=labels or {}, created=now,
                      expires=(now + expire_after) if expire_after else None)

        def tx(conn: sqlite3.Connection) -> None:
            namespaces.ensure(conn, ns)
            try:
                conn.execute(
                    "INSERT INTO leases (namespace, id, labels, created, expires) VALUES (?,?,?,?,?)",
                    (ns, lease.id, json.dumps(lease.labels), lease.created, lease.expires),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"lease {lease_id} already exists") from None

        await self._db.run(tx)
        return lease

    async def list(self) -> list[Lease]:
        ns = require_namespace()
        rows = await self._db.run(
            lambda c: c.execute("SELECT * FROM leases WHERE namespace=? ORDER BY created", (ns,)).fetchall()
        )
        return [Lease(id=r["id"], labels=json.loads(r["labels"]), created=r["created"], expires=r["expires"])
                for r in rows]

    async def delete(self, lease_id: str) -> None:
        ns = require_namespace()

        def tx(conn: sqlite3.Connection) -> None:
            cur = conn.execute("DELETE FROM leases WHERE namespace=? AND id=?", (ns, lease_id))
            if cur.rowcount == 0:
                raise NotFound(f"lease {lease_id} not found")
            conn.execute("DELETE FROM lease_resources WHERE namespace=? AND lease=?", (ns, lease_id))

        await self._db.run(tx)
