"""Networks and endpoints: SQLite under --data-root, served from memory."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from engine.errors import NotFound
from engine.networks.model import Endpoint, Network, Sandbox
from engine.recordfile import RecordFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    network_id   TEXT NOT NULL,
    container_id TEXT NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (network_id, container_id)
);
CREATE TABLE IF NOT EXISTS sandboxes (
    container_id TEXT PRIMARY KEY,
    doc          TEXT NOT NULL
);
"""


class NetworkStore:
    def __init__(self, path: Path) -> None:
        self._file = RecordFile(path, _SCHEMA, "networks")
        self._by_id: dict[str, Network] = {}
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._of_container: dict[str, dict[str, Endpoint]] = {}
        for (doc,) in self._file.rows("SELECT doc FROM networks"):
            n = Network.model_validate_json(doc)
            self._by_id[n.id] = n
        for (doc,) in self._file.rows("SELECT doc FROM endpoints"):
            e = Endpoint.model_validate_json(doc)
            self._put(e)
        self._sandboxes: dict[str, Sandbox] = {}
        for (doc,) in self._file.rows("SELECT doc FROM sandboxes"):
            sb = Sandbox.model_validate_json(doc)
            self._sandboxes[sb.container_id] = sb

    # networks ------------------------------------------------------------

    def find(self, ref: str) -> Network | None:
        """By full id, exact name, or unique id prefix (Docker's order)."""
        if ref in self._by_id:
            return self._by_id[ref]
        if (n := self.by_name(ref)) is not None:
            return n
        matches = [n for i, n in self._by_id.items() if ref and i.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def by_name(self, name: str) -> Network | None:
        return next((n for n in self._by_id.values() if n.name == name), None)

    def get(self, ref: str) -> Network:
        n = self.find(ref)
        if n is None:
            raise NotFound(f"network {ref} not found")
        return n

    def all(self) -> list[Network]:
        return list(self._by_id.values())

    async def save(self, n: Network) -> None:
        self._by_id[n.id] = n
        await self._file.write(("INSERT OR REPLACE INTO networks (id, name, doc) VALUES (?, ?, ?)",
                                (n.id, n.name, n.model_dump_json())))

    async def delete(self, n: Network) -> None:
        """The network and the endpoints left on it (those of containers that do not run), in one transaction."""
        self._by_id.pop(n.id, None)
        for e in self.endpoints_on(n.id):
            self._drop(e)
        await self._file.write(("DELETE FROM endpoints WHERE network_id=?", (n.id,)),
                               ("DELETE FROM networks WHERE id=?", (n.id,)))

    # endpoints -----------------------------------------------------------

    def _put(self, e: Endpoint) -> None:
        self._endpoints[(e.network_id, e.container_id)] = e
        self._of_container.setdefault(e.container_id, {})[e.network_id] = e

    def _drop(self, e: Endpoint) -> None:
        self._endpoints.pop((e.network_id, e.container_id), None)
        mine = self._of_container.get(e.container_id, {})
        mine.pop(e.network_id, None)
        if not mine:
            self._of_container.pop(e.container_id, None)

    def endpoints_of(self, container_id: str) -> list[Endpoint]:
        # Indexed by container: `docker ps` asks this of every container on every call.
        return list(self._of_container.get(container_id, {}).values())

    def endpoints_on(self, network_id: str) -> list[Endpoint]:
        return [e for (nid, _), e in self._endpoints.items() if nid == network_id]

    def endpoint(self, network_id: str, container_id: str) -> Endpoint | None:
        return self._endpoints.get((network_id, container_id))

    async def save_endpoint(self, e: Endpoint) -> None:
        self._put(e)
        await self._file.write(("INSERT OR REPLACE INTO endpoints (network_id, container_id, doc) VALUES (?, ?, ?)",
                                (e.network_id, e.container_id, e.model_dump_json())))

    async def delete_endpoint(self, e: Endpoint) -> None:
        self._drop(e)
        await self._file.write(("DELETE FROM endpoints WHERE network_id=? AND container_id=?",
                                (e.network_id, e.container_id)))

    @asynccontextmanager
    async def set_aside(self, network_id: str, container_id: str) -> AsyncIterator[None]:
        """The container's endpoint on the network, if any, taken out for the block (which makes its new one);
        put back if the block fails."""
        old = self.endpoint(network_id, container_id)
        if old is not None:
            await self.delete_endpoint(old)
        try:
            yield
        except BaseException:
            if old is not None:
                await self.save_endpoint(old)
            raise

    # sandboxes -----------------------------------------------------------

    def sandbox(self, container_id: str) -> Sandbox | None:
        return self._sandboxes.get(container_id)

    def sandboxes(self) -> list[Sandbox]:
        return list(self._sandboxes.values())

    async def save_sandbox(self, sb: Sandbox, endpoints: list[Endpoint]) -> None:
        """The sandbox with its endpoints' addresses and interfaces, in one transaction."""
        self._sandboxes[sb.container_id] = sb
        for e in endpoints:
            self._put(e)
        await self._file.write(
            ("INSERT OR REPLACE INTO sandboxes (container_id, doc) VALUES (?, ?)", (sb.container_id,
                                                                                sb.model_dump_json())),
            *(("INSERT OR REPLACE INTO endpoints (network_id, container_id, doc) VALUES (?, ?, ?)",
               (e.network_id, e.container_id, e.model_dump_json())) for e in endpoints))

    async def delete_sandbox(self, container_id: str, endpoints: list[Endpoint]) -> None:
        self._sandboxes.pop(container_id, None)
        for e in endpoints:
            self._put(e)
        await self._file.write(
            ("DELETE FROM sandboxes WHERE container_id=?", (container_id,)),
            *(("INSERT OR REPLACE INTO endpoints (network_id, container_id, doc) VALUES (?, ?, ?)",
               (e.network_id, e.container_id, e.model_dump_json())) for e in endpoints))
