"""The engine's container records: SQLite under --data-root, served from memory.

Every record is loaded at start and kept in memory, so lookups (full id, name,
id prefix) never touch the disk; writes go through to SQLite on one dedicated
thread, in the order they were made, so the file always holds the latest state.
Names are reserved in memory the moment a create begins: two concurrent creates
of one name cannot both pass the check.
"""
from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from engine.containers.health import Health
from engine.containers.state import State
from engine.errors import Conflict, InvalidArgument, NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc  TEXT NOT NULL
)
"""


class Storage(BaseModel):
    """Where a container's files are on the host, as the runtime laid them out at create (they do not move)."""

    driver: str = ""  # the snapshotter
    graph_data: dict[str, str] | None = None  # overlay's LowerDir, UpperDir and WorkDir
    etc: dict[str, str] = Field(default_factory=dict)  # /etc/hosts etc. -> the host file bind-mounted there


class Container(BaseModel):
    id: str  # 64 hex; also the runtime's container and task id
    name: str  # without the leading "/"
    created: float
    image: str  # as the client gave it
    image_ref: str  # the normalised reference the runtime knows it by
    image_id: str  # "sha256:<config digest>"
    path: str
    args: list[str]
    config: dict[str, Any]  # Docker's Config, image defaults merged in
    host_config: dict[str, Any]
    state: State = Field(default_factory=State)
    restart_count: int = 0
    log_path: str | None = None  # known from the first start on; outlives the runtime task
    rootfs: str | None = None  # where the runtime mounts the layers while a task runs; known from the first start
    storage: Storage | None = None  # known from create on (older records: asked of the runtime)
    # The volumes it mounts, resolved at create: {name, destination, read_only, anonymous}.
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    # Host binds copied by --volumes-from: {source, destination, read_only, propagation}.
    binds_from: list[dict[str, Any]] = Field(default_factory=list)
    # --mount type=image: {source (as given), image_id, chain_id, destination, subpath} (image_mounts.py).
    image_mounts: list[dict[str, Any]] = Field(default_factory=list)
    health: Health | None = None  # State.Health, for containers with a healthcheck
    # The EndpointsConfig of a create whose network did not exist yet: dockerd looks for it at start.
    unplanned_network: dict[str, Any] | None = None


def name_conflict(name: str, holder: str) -> Conflict:
    return Conflict(f'Conflict. The container name "/{name}" is already in use by container "{holder}". '
                    "You have to remove (or rename) that container to be able to reuse that name.")


class ContainerStore:
    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="containers-db")
        self._by_id: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        for (doc,) in self._conn.execute("SELECT doc FROM containers"):
            c = Container.model_validate_json(doc)
            self._by_id[c.id] = c
            self._names[c.name] = c.id

    # lookups -------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """By full id, name (with or without "/"), or unique id prefix."""
        c = self.find(ref)
        if c is None:
            raise NotFound(f"No such container: {ref}")
        return c

    def find(self, ref: str) -> Container | None:
        if ref in self._by_id:
            return self._by_id[ref]
        cid = self._names.get(ref.removeprefix("/"))
        if cid is not None:
            return self._by_id.get(cid)
        if not ref:
            return None
        matches = [c for i, c in self._by_id.items() if i.startswith(ref)]
        if len(matches) > 1:
            # Not a 404: a client would read "absent" where several containers answer to it.
            raise InvalidArgument(f"Multiple IDs found with provided prefix: {ref}")
        return matches[0] if matches else None

    def all(self) -> list[Container]:
        return list(self._by_id.values())

    def name_of(self, cid: str) -> str:
        c = self._by_id.get(cid)
        return c.name if c is not None else cid[:12]

    def hostname_of(self, cid: str) -> str | None:
        c = self._by_id.get(cid)
        return c.config.get("Hostname") if c is not None else None

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self._by_id.values() if any(v["name"] == name for v in c.volumes)]

    def running_volume_users(self, name: str) -> list[str]:
        return [cid for cid in self.volume_users(name) if self._by_id[cid].state.running]

    def image_users(self, image_id: str) -> list[tuple[str, bool]]:
        """The containers of an image: made from it, or mounting it."""
        return [(c.id, c.state.running) for c in self._by_id.values()
                if c.image_id == image_id or any(m["image_id"] == image_id for m in c.image_mounts)]

    def images_in_use(self) -> set[str]:
        return {c.image_id for c in self._by_id.values()} | {m["image_id"] for c in self._by_id.values()
                                                           for m in c.image_mounts}

    # names ---------------------------------------------------------------

    def name_taken(self, name: str) -> bool:
        return name in self._names

    def reserve(self, name: str, cid: str) -> None:
        holder = self._names.get(name)
        if holder is not None and holder != cid:
            raise name_conflict(name, holder)
        self._names[name] = cid

    def release(self, name: str, cid: str) -> None:
        if self._names.get(name) == cid:
            del self._names[name]

    # writes --------------------------------------------------------------

    async def save(self, c: Container) -> None:
        """Record `c` (new or changed); its name must be reserved for it."""
        self._by_id[c.id] = c
        doc = c.model_dump_json()
        await self._write("INSERT OR REPLACE INTO containers (id, name, doc) VALUES (?, ?, ?)", (c.id, c.name, doc))

    async def rename(self, c: Container, new: str) -> None:
        self.reserve(new, c.id)
        old, c.name = c.name, new
        self.release(old, c.id)
        await self.save(c)

    async def delete(self, c: Container) -> None:
        self._by_id.pop(c.id, None)
        self.release(c.name, c.id)
        await self._write("DELETE FROM containers WHERE id=?", (c.id,))

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        # The snapshot (params) is taken on the loop; the single writer thread keeps the order.
        await asyncio.get_running_loop().run_in_executor(self._writer, self._conn.execute, sql, params)

