"""An SQLite file that the engine reads once and then writes through, in order, on one thread.

The engine keeps its records in memory (lookups never touch the disk); every change is queued to a
single writer thread, so the file always holds the latest state and the event loop never waits on
a disk sync.
"""
from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


class RecordFile:
    def __init__(self, path: Path, schema: str, name: str) -> None:
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(schema)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-db")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Read at start-up, before any write is queued."""
        return self._conn.execute(sql).fetchall()

    async def write(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        """Run the statements in one transaction; the parameters are snapshots taken on the loop."""
        await asyncio.get_running_loop().run_in_executor(self._writer, self._apply, statements)

    def _apply(self, statements: tuple[tuple[str, tuple[Any, ...]], ...]) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            for sql, params in statements:
                self._conn.execute(sql, params)
