"""Per-snapshotter storage: SQLite metadata plus the snapshot directories.

Layout under a snapshotter root:

    metadata.db             keys -> numeric ids, parent links, kind, labels, times
    snapshots/<id>/fs       the tree (overlay: the upper dir)
    snapshots/<id>/work     overlay workdir (overlay only)
    snapshots/.tmp-*        a snapshot being built (not yet in the db)
    snapshots/.rm-*         a snapshot being deleted (already gone from the db)

Crash safety comes from ordering: a directory is renamed to its id only inside the
transaction that inserts its row (rename first, then COMMIT), and a row is deleted
(COMMIT) before its directory is renamed away. So the db never names a missing
directory; the worst a crash leaves is a directory the db does not know, which
`cleanup()` deletes. Ids are AUTOINCREMENT and never reused, so such a leftover can
never be mistaken for a later snapshot.

Everything here blocks; the async snapshotters call it through asyncio.to_thread.
One connection is shared by the worker threads and serialised by a lock.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from runtime.snapshots.fsutil import remove_tree
from runtime.snapshots.snapshotter import Info, Kind, Usage

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES snapshots(id) ON DELETE RESTRICT,
    kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
    labels TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    size INTEGER,
    inodes INTEGER,
    content INTEGER
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
"""

_SELECT = """
SELECT s.id, s.key, p.key, s.parent_id, s.kind, s.labels, s.created, s.updated, s.size, s.inodes, s.content
FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id
"""

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
RM_PREFIX = ".rm-"


@dataclass(frozen=True)
class Record:
    id: int
    name: str
    parent: str | None
    parent_id: int | None
    kind: Kind
    labels: dict[str, str]
    created: float
    updated: float
    # Recorded at commit; None for active snapshots and views, and for snapshots committed before version 2
    # recorded content bytes (measured again then, and recorded).
    usage: Usage | None

    def info(self) -> Info:
        return Info(
            name=self.name,
            parent=self.parent,
            kind=self.kind,
            labels=dict(self.labels),
            created=self.created,
            updated=self.updated,
        )


def _record(row: tuple[Any, ...]) -> Record:
    id_, key, parent, parent_id, kind, labels, created, updated, size, inodes, content = row
    return Record(
        id=id_,
        name=key,
        parent=parent,
        parent_id=parent_id,
        kind=Kind(kind),
        labels=json.loads(labels),
        created=created,
        updated=updated,
        usage=None if size is None or content is None else Usage(size=size, inodes=inodes, content=content),
    )


def _check_key(key: str, what: str = "key") -> None:
    if not isinstance(key, str) or not key:
        raise InvalidArgument(f"snapshot {what} must be a non-empty string")


class Storage:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.snapshots_dir = os.path.join(self.root, "snapshots")
        os.makedirs(self.snapshots_dir, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # .tmp-/.rm- dirs owned by in-flight operations
        self._db: sqlite3.Connection | None = sqlite3.connect(
            os.path.join(self.root, "metadata.db"),
            isolation_level=None,  # explicit BEGIN/COMMIT below
            check_same_thread=False,
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL, not NORMAL: a lost COMMIT after its rename/rmtree would break the ordering above.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)  # idempotent, so it needs no transaction
            with self._tx() as db:
                row = db.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                elif row[0] == 1:
                    db.execute("ALTER TABLE snapshots ADD COLUMN content INTEGER")
                    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
                elif row[0] > SCHEMA_VERSION:
                    raise FailedPrecondition(
                        f"{self.root}/metadata.db has schema version {row[0]}; "
                        f"this build understands up to {SCHEMA_VERSION}"
                    )
        except BaseException:
            self.close()
            raise

    # -- paths -----------------------------------------------------------------

    def snapshot_dir(self, id_: int) -> str:
        return os.path.join(self.snapshots_dir, str(id_))

    def fs_dir(self, id_: int) -> str:
        return os.path.join(self.snapshots_dir, str(id_), "fs")

    def work_dir(self, id_: int) -> str:
        return os.path.join(self.snapshots_dir, str(id_), "work")

    # -- db plumbing ---------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise FailedPrecondition(f"snapshotter at {self.root} is closed")
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> Record:
        row = db.execute(_SELECT + " WHERE s.key = ?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"snapshot {key!r} does not exist")
        return _record(row)

    @staticmethod
    def _ancestors(db: sqlite3.Connection, rec: Record) -> list[Record]:
        chain: list[Record] = []
        parent_id = rec.parent_id
        while parent_id is not None:
            parent = _record(db.execute(_SELECT + " WHERE s.id = ?", (parent_id,)).fetchone())
            chain.append(parent)
            parent_id = parent.parent_id
        return chain

    @classmethod
    def _check_new(cls, db: sqlite3.Connection, key: str, parent: str | None) -> list[Record]:
        """Validate a prepare/view; returns the parent chain, nearest first."""
        if db.execute("SELECT 1 FROM snapshots WHERE key = ?", (key,)).fetchone():
            raise AlreadyExists(f"snapshot {key!r} already exists")
        if parent is None:
            return []
        rec = cls._get(db, parent)
        if rec.kind is not Kind.COMMITTED:
            raise InvalidArgument(f"parent {parent!r} is not a committed snapshot (it is {rec.kind.value})")
        return [rec, *cls._ancestors(db, rec)]

    # -- queries ---------------------------------------------------------------------

    def get(self, key: str) -> Record:
        with self._tx() as db:
            return self._get(db, key)

    def chain(self, key: str) -> tuple[Record, list[Record]]:
        """The snapshot and its ancestors, nearest first."""
        with self._tx() as db:
            rec = self._get(db, key)
            return rec, self._ancestors(db, rec)

    def walk(self) -> list[Record]:
        with self._tx() as db:
            return [_record(r) for r in db.execute(_SELECT + " ORDER BY s.id")]

    # -- mutations ---------------------------------------------------------------------

    def begin_create(self, key: str, parent: str | None) -> tuple[str, list[Record]]:
        """Check a prepare/view can work and allocate its build dir.

        Checking now fails fast before the (possibly expensive) populate step;
        finish_create checks again because things may change meanwhile.
        """
        _check_key(key)
        if parent is not None:
            _check_key(parent, "parent")
        with self._tx() as db:
            parents = self._check_new(db, key, parent)
            name = TMP_PREFIX + uuid.uuid4().hex
            self._busy.add(name)
        path = os.path.join(self.snapshots_dir, name)
        try:
            os.mkdir(path, 0o700)
        except BaseException:
            self._release(name)
            raise
        return path, parents

    def finish_create(
        self, tmp: str, key: str, parent: str | None, kind: Kind, labels: dict[str, str]
    ) -> tuple[Record, list[Record]]:
        """Publish a populated build dir as snapshot `key` (or discard it on failure)."""
        now = time.time()
        try:
            with self._tx() as db:
                parents = self._check_new(db, key, parent)
                cur = db.execute(
                    "INSERT INTO snapshots (key, parent_id, kind, labels, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (key, parents[0].id if parents else None, kind.value, json.dumps(labels), now, now),
                )
                id_ = cur.lastrowid
                assert id_ is not None
                os.rename(tmp, self.snapshot_dir(id_))
                rec = self._get(db, key)
        except BaseException:
            self.abort_create(tmp)
            raise
        self._release(os.path.basename(tmp))
        return rec, parents

    def abort_create(self, tmp: str) -> None:
        try:
            remove_tree(tmp)
        except OSError:
            pass  # runs while another error propagates; cleanup() gets it later
        self._release(os.path.basename(tmp))

    def commit(self, name: str, key: str, labels: dict[str, str], usage: Usage) -> None:
        _check_key(name, "name")
        now = time.time()
        with self._tx() as db:
            rec = self._get(db, key)
            if rec.kind is not Kind.ACTIVE:
                raise FailedPrecondition(
                    f"snapshot {key!r} is {rec.kind.value}, only active snapshots can be committed"
                )
            if db.execute("SELECT 1 FROM snapshots WHERE key = ?", (name,)).fetchone():
                raise AlreadyExists(f"snapshot {name!r} already exists")
            db.execute(
                "UPDATE snapshots SET key = ?, kind = 'committed', labels = ?, created = ?, updated = ?,"
                " size = ?, inodes = ?, content = ? WHERE id = ?",
                (name, json.dumps(labels), now, now, usage.size, usage.inodes, usage.content, rec.id),
            )

    def record_usage(self, id_: int, usage: Usage) -> None:
        """A committed snapshot's usage measured after its commit: one committed before content bytes were recorded."""
        with self._tx() as db:
            db.execute("UPDATE snapshots SET size = ?, inodes = ?, content = ? WHERE id = ? AND kind = 'committed'",
                       (usage.size, usage.inodes, usage.content, id_))

    def update_labels(self, key: str, apply: Callable[[dict[str, str]], dict[str, str]]) -> Record:
        with self._tx() as db:
            rec = self._get(db, key)
            db.execute(
                "UPDATE snapshots SET labels = ?, updated = ? WHERE id = ?",
                (json.dumps(apply(dict(rec.labels))), time.time(), rec.id),
            )
            return self._get(db, key)

    def remove(self, key: str) -> None:
        with self._tx() as db:
            rec = self._get(db, key)
            children = [r[0] for r in db.execute("SELECT key FROM snapshots WHERE parent_id = ?", (rec.id,))]
            if children:
                raise FailedPrecondition(
                    f"cannot remove snapshot {key!r}: it has {len(children)} children ({', '.join(sorted(children))})"
                )
            db.execute("DELETE FROM snapshots WHERE id = ?", (rec.id,))
            name = f"{RM_PREFIX}{rec.id}"
            self._busy.add(name)
        self._discard(self.snapshot_dir(rec.id), name)

    def _discard(self, path: str, name: str) -> bool:
        """Hide `path` under `name` first so it is never seen half deleted, then delete it.

        Failures (e.g. something mounted inside) are logged, not raised: the db no
        longer knows the directory, so the next cleanup() retries it.
        """
        hidden = os.path.join(self.snapshots_dir, name)
        try:
            if path != hidden:
                os.rename(path, hidden)
            remove_tree(hidden)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("could not delete %s (left for cleanup): %s", hidden, e)
            return False
        finally:
            self._release(name)
        return True

    def _release(self, name: str) -> None:
        with self._lock:
            self._busy.discard(name)

    def cleanup(self) -> list[str]:
        """Delete directories the db does not know (crash leftovers); returns their names."""
        with self._tx() as db:
            known = {str(r[0]) for r in db.execute("SELECT id FROM snapshots")}
            stale = [n for n in os.listdir(self.snapshots_dir) if n not in known and n not in self._busy]
            claimed = []
            for name in stale:
                hidden = name if name.startswith((TMP_PREFIX, RM_PREFIX)) else f"{RM_PREFIX}{name}"
                if hidden not in self._busy:
                    self._busy.add(hidden)
                    claimed.append((name, hidden))
        return [name for name, hidden in claimed if self._discard(os.path.join(self.snapshots_dir, name), hidden)]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
