"""Volume records: SQLite under --data-root, served from memory."""
from __future__ import annotations

from pathlib import Path

from engine.recordfile import RecordFile
from engine.volumes.model import Volume

_SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    doc  TEXT NOT NULL
);
"""


class VolumeStore:
    def __init__(self, path: Path) -> None:
        self._file = RecordFile(path, _SCHEMA, "volumes")
        self._by_name: dict[str, Volume] = {}
        for (doc,) in self._file.rows("SELECT doc FROM volumes"):
            v = Volume.model_validate_json(doc)
            self._by_name[v.name] = v

    def find(self, name: str) -> Volume | None:
        return self._by_name.get(name)

    def all(self) -> list[Volume]:
        return list(self._by_name.values())

    async def save(self, v: Volume) -> None:
        self._by_name[v.name] = v
        await self._file.write(("INSERT OR REPLACE INTO volumes (name, doc) VALUES (?, ?)", (v.name,
                                                                                         v.model_dump_json())))

    async def delete(self, v: Volume) -> None:
        self._by_name.pop(v.name, None)
        await self._file.write(("DELETE FROM volumes WHERE name=?", (v.name,)))
