"""Which image `docker commit` made an image from: dockerd's Parent, kept by the engine.

The runtime knows names and content; an image's parent is Docker's notion, so the engine keeps it, child
ID to parent ID, in an SQLite file under --data-root. It decides what `docker rmi` may delete (an image
with children may not be; a deleted child takes its nameless parents along) and fills Parent and the
IDs of `docker history`.
"""
from __future__ import annotations

from pathlib import Path

from engine.recordfile import RecordFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parents (
    child  TEXT PRIMARY KEY,
    parent TEXT NOT NULL
);
"""


class Parents:
    def __init__(self, path: Path) -> None:
        self._file = RecordFile(path, _SCHEMA, "image-parents")
        self._parent: dict[str, str] = dict(self._file.rows("SELECT child, parent FROM parents"))

    def parent(self, image_id: str) -> str | None:
        return self._parent.get(image_id)

    def children(self, image_id: str) -> list[str]:
        return [child for child, parent in self._parent.items() if parent == image_id]

    async def record(self, child: str, parent: str) -> None:
        if child == parent or self._parent.get(child) == parent:
            return
        self._parent[child] = parent
        await self._file.write(("INSERT OR REPLACE INTO parents (child, parent) VALUES (?, ?)", (child, parent)))

    async def forget(self, image_id: str) -> None:
        """An image deleted: it is nobody's child any more, and its children have no parent here."""
        orphans = self.children(image_id)
        if image_id not in self._parent and not orphans:
            return
        self._parent.pop(image_id, None)
        for child in orphans:
            del self._parent[child]
        await self._file.write(("DELETE FROM parents WHERE child=? OR parent=?", (image_id, image_id)))
