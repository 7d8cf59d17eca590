"""POST /containers/prune: remove the stopped containers the filters pick, and count the space freed.

Each container's writable layer is measured just before its removal, so the reclaimed
space is what the removals actually gave back.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from engine.containers.filters import prunable
from engine.containers.store import Container, ContainerStore


class Remover(Protocol):
    async def remove(self, ref: str, force: bool, volumes: bool = False) -> None: ...


class ContainerPruner:
    def __init__(self, store: ContainerStore, size: Callable[[Container], Awaitable[int | None]],
                 run: Remover) -> None:
        self._store = store
        self._size = size
        self._run = run

    async def prune(self, f: dict[str, list[str]]) -> dict[str, Any]:
        matches = prunable(f)
        deleted: list[str] = []
        reclaimed = 0
        for c in self._store.all():
            if not matches(c):
                continue
            reclaimed += await self._size(c) or 0
            await self._run.remove(c.id, force=False)
            deleted.append(c.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}
