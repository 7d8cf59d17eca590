"""Per-pull progress: what each blob is doing, reported as NDJSON lines."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BlobProgress:
    digest: str
    kind: str  # 'manifest', 'config' or 'layer'
    total: int
    current: int = 0
    status: str = "waiting"  # waiting, downloading, exists, verifying, downloaded, extracting, done

    def wire(self) -> dict[str, Any]:
        return {"status": self.status, "digest": self.digest, "kind": self.kind,
                "current": self.current, "total": self.total}


@dataclass
class PullProgress:
    """Collects state changes; the API streams them without blocking the pull."""

    events: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue())
    blobs: dict[str, BlobProgress] = field(default_factory=dict)

    def emit(self, event: dict[str, Any]) -> None:
        self.events.put_nowait(event)

    def blob(self, digest: str, kind: str, total: int) -> BlobProgress:
        bp = self.blobs.get(digest)
        if bp is None:
            bp = self.blobs[digest] = BlobProgress(digest, kind, total)
        return bp

    def update(self, bp: BlobProgress, status: str | None = None) -> None:
        if status is not None:
            bp.status = status
        self.emit(bp.wire())
