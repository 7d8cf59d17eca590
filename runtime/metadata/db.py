"""The runtime's metadata database: one SQLite file, one writer thread.

Every access runs on a dedicated thread so the event loop never blocks and
SQLite sees a single connection; each `run` is one transaction, so a crash
leaves either all of an operation or none of it.
"""
from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

# Each entry migrates from version i to i+1; append, never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE namespaces (
        name TEXT PRIMARY KEY,
        labels TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE TABLE images (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        media_type TEXT NOT NULL,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (namespace, name)
    );
    CREATE TABLE content (
        namespace TEXT NOT NULL,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (namespace, digest)
    );
    -- Explicit GC edges: what a blob keeps alive (child blobs, unpacked snapshots).
    CREATE TABLE content_refs (
        namespace TEXT NOT NULL,
        digest TEXT NOT NULL,
        kind TEXT NOT NULL,            -- 'content' or 'snapshot'
        target TEXT NOT NULL,          -- digest, or '<snapshotter>/<key>'
        PRIMARY KEY (namespace, digest, kind, target)
    );
    CREATE TABLE leases (
        namespace TEXT NOT NULL,
        id TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        expires REAL,
        PRIMARY KEY (namespace, id)
    );
    CREATE TABLE lease_resources (
        namespace TEXT NOT NULL,
        lease TEXT NOT NULL,
        kind TEXT NOT NULL,            -- 'content', 'snapshot' or 'ingest'
        target TEXT NOT NULL,
        PRIMARY KEY (namespace, lease, kind, target)
    );
    CREATE TABLE snapshots (
        namespace TEXT NOT NULL,
        snapshotter TEXT NOT NULL,
        key TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        PRIMARY KEY (namespace, snapshotter, key)
    );
    """,
    """
    CREATE TABLE containers (
        namespace TEXT NOT NULL,
        id TEXT NOT NULL,
        image TEXT NOT NULL,
        snapshotter TEXT NOT NULL,
        snapshot_key TEXT NOT NULL,
        runtime TEXT NOT NULL,
        spec TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (namespace, id)
    );
    """,
]


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadata-db")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._submit(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        for i in range(version, len(MIGRATIONS)):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _split_sql(MIGRATIONS[i]):
                    conn.execute(stmt)
                conn.execute("UPDATE schema_version SET version = ?", (i + 1,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self._conn = conn

    async def _submit(self, fn: Callable[[], T]) -> T:
        # The caller's context goes along: a transaction reads the request's lease (leases.record) from it.
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._executor, ctx.run, fn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn(conn) in one transaction on the database thread."""

        def tx() -> T:
            conn = self._conn
            assert conn is not None, "database not open"
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._submit(tx)

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._submit(_close)
        self._executor.shutdown(wait=True)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (sqlite3.execute takes one at a time, and
    executescript would commit our transaction behind our back)."""
    stmts: list[str] = []
    for part in script.split(";"):
        lines = [ln for ln in part.splitlines() if ln.strip() and not ln.strip().startswith("--")]
        text = "\n".join(ln.split("--")[0] for ln in lines).strip()
        if text:
            stmts.append(text)
    return stmts
