"""One prune of a kind at a time, as dockerd runs them: a second one while the first runs is refused, not queued
(containers and networks share dockerd's one flag; images and volumes have their own)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import Conflict

CONTAINERS = NETWORKS = "daemon"
IMAGES = "images"
VOLUMES = "volumes"


class PruneGuard:
    def __init__(self) -> None:
        self._running: set[str] = set()

    @contextmanager
    def running(self, kind: str) -> Iterator[None]:
        if kind in self._running:
            raise Conflict("a prune operation is already running")
        self._running.add(kind)
        try:
            yield
        finally:
            self._running.discard(kind)
