"""Content store interfaces: blobs addressed by digest, written through resumable ingests."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel


class ContentInfo(BaseModel):
    digest: str
    size: int
    labels: dict[str, str] = {}
    created: float = 0.0
    updated: float = 0.0


class IngestStatus(BaseModel):
    ref: str
    offset: int
    total: int
    expected: str | None
    updated: float


class Writer(Protocol):
    """A resumable ingest. Synchronous: the caller runs it in a thread."""

    ref: str
    offset: int

    def write(self, data: bytes) -> None: ...

    def truncate(self) -> None:
        """Restart from zero (the source could not resume at `offset`)."""

    def commit(self, size: int, expected: str) -> str:
        """Verify size and digest, then make the blob visible; returns the digest."""

    def close(self) -> None: ...


class Store(Protocol):
    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int: ...

    def path(self, digest: str) -> Path: ...

    def writer(self, ref: str, expected: str | None = None, total: int = 0) -> Writer: ...

    def abort(self, ref: str) -> None: ...

    def ingests(self) -> list[IngestStatus]: ...

    def walk(self) -> list[str]: ...

    def delete(self, digest: str) -> None: ...

    def verify(self, digest: str) -> bool: ...
