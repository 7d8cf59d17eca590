"""The runtime's event journal: every envelope on disk (SQLite, WAL) so `GET /events?since=` outlives the daemon.

Publishing only hands the envelope to a writer thread (a queue put); the thread writes what piled up in one
transaction and trims the journal to its retention, so a burst of events costs the event loop nothing and
the disk one commit per batch. Readers use their own connection in a worker thread: WAL lets them read
while the writer writes. (The engine keeps its own journal alike, engine/events_journal.py: the two
daemons share no code by design, and SQLite against segment files is measured there.)
"""
from __future__ import annotations

import asyncio
import json
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("runtime.events.journal")

FILENAME = "events.db"
PAGE = 1000
# Retention is enforced at most this often: a DELETE per batch would cost more than it saves.
TRIM_INTERVAL = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (time_ns);
"""


@dataclass(frozen=True)
class Retention:
    """How much history is kept: the newest `count` events, none older than `age` seconds (0: no age bound)."""

    count: int = 100_000
    age: float = 7 * 24 * 3600.0


_AGE = re.compile(r"(\d+)(s|m|h)")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def age_seconds(text: str) -> float:
    """A retention age as the engine's daemon.json spells it ("168h", "90m", "1h30m"); "0" for no age bound."""
    if text == "0":
        return 0.0
    parts = _AGE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration (e.g. 168h, 30m)")
    return float(sum(int(n) * _SECONDS[u] for n, u in parts))


@dataclass(frozen=True)
class Record:
    seq: int
    time_ns: int
    data: dict[str, Any]


class _Barrier:
    """Put in the queue behind the events it waits for; set once they are committed."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()

    def release(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self._set)
        except RuntimeError:
            pass  # the loop is gone (shutdown): nobody waits any more

    def _set(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


_STOP = object()


class Journal:
    def __init__(self, path: Path, retention: Retention) -> None:
        self.path = path
        self.retention = retention
        self._queue: queue.SimpleQueue[Record | _Barrier | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._last_trim = 0.0

    def open(self) -> int:
        """Create or open the journal (blocking: run it in a thread); the last sequence number written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        last = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        self._thread = threading.Thread(target=self._write, args=(db,), name="events-journal", daemon=True)
        self._thread.start()
        return int(last)

    def append(self, seq: int, time_ns: int, data: dict[str, Any]) -> None:
        self._queue.put(Record(seq, time_ns, data))

    async def flushed(self) -> None:
        """Returns once everything appended so far is on disk."""
        if self._thread is None or not self._thread.is_alive():
            return
        barrier = _Barrier()
        self._queue.put(barrier)
        await barrier.done

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def read(self, since_ns: int, until_ns: int | None, upto_seq: int) -> AsyncIterator[Record]:
        """The journal's events in [since_ns, until_ns] up to sequence `upto_seq`, oldest first, a page at a time."""
        await self.flushed()
        after = 0
        while True:
            page = await asyncio.to_thread(self._page, since_ns, until_ns, after, upto_seq)
            for rec in page:
                yield rec
            if len(page) < PAGE:
                return
            after = page[-1].seq

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def _page(self, since_ns: int, until_ns: int | None, after: int, upto: int) -> list[Record]:
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT seq, time_ns, record FROM events WHERE seq > ? AND seq <= ? AND time_ns >= ? AND time_ns <= ?"
                " ORDER BY seq LIMIT ?", (after, upto, since_ns, until_ns if until_ns is not None else 2**63 - 1,
                                          PAGE)).fetchall()
        finally:
            db.close()
        return [Record(seq, t, json.loads(blob)) for seq, t, blob in rows]

    def _write(self, db: sqlite3.Connection) -> None:
        try:
            while True:
                batch = [self._queue.get()]
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                rows = [(r.seq, r.time_ns, json.dumps(r.data, separators=(",", ":")))
                        for r in batch if isinstance(r, Record)]
                try:
                    if rows:
                        with db:
                            db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?)", rows)
                    self._trim(db)
                except sqlite3.Error as e:
                    # The live stream goes on without its history rather than the daemon stopping.
                    log.error("events journal %s: %d events not recorded: %s", self.path, len(rows), e)
                for item in batch:
                    if isinstance(item, _Barrier):
                        item.release()
                if _STOP in batch:
                    return
        finally:
            db.close()

    def _trim(self, db: sqlite3.Connection) -> None:
        now = time.monotonic()
        if now - self._last_trim < TRIM_INTERVAL:
            return
        self._last_trim = now
        with db:
            db.execute("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?", (self.retention.count,))
            if self.retention.age > 0:
                db.execute("DELETE FROM events WHERE time_ns < ?", (time.time_ns() - int(self.retention.age * 1e9),))
