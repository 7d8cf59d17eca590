"""The snapshotter contract (containerd semantics).

A snapshot is a directory tree identified by a key. Three kinds exist:

* active: writable, made by `prepare`; becomes committed through `commit`.
* view: read-only, made by `view`; can never be committed.
* committed: immutable, the only kind that may be a parent.

Keys share one namespace across kinds. `prepare`/`view` return the mounts that
materialise the snapshot; the caller mounts them (runtime.mount) where it likes.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, Field, computed_field

from runtime.mount import Mount


class Kind(str, enum.Enum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


class Info(BaseModel):
    name: str
    parent: str | None = None
    kind: Kind
    labels: dict[str, str] = Field(default_factory=dict)
    created: float  # unix seconds
    updated: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        # containerd calls it Name in Info but key everywhere else: both are served,
        # including in serialised form (the API's JSON carries "name" and "key").
        return self.name


class Usage(BaseModel):
    size: int = 0  # bytes on disk
    inodes: int = 0
    # Bytes of file contents and symlink targets, hardlinked inodes once: what Docker calls a layer's size.
    content: int = 0


WalkFilter = Callable[[Info], bool]


class Snapshotter(Protocol):
    async def stat(self, key: str) -> Info:
        """NotFound if no snapshot has this key."""
        ...

    async def update(self, info: Info, fieldpaths: list[str] | None = None) -> Info:
        """Only labels are mutable. Without fieldpaths the labels are replaced
        wholesale; "labels" does the same; "labels.<k>" sets (or, when absent from
        info.labels, deletes) a single label. Other paths are InvalidArgument."""
        ...

    async def usage(self, key: str) -> Usage:
        """Space used by this snapshot alone (not its parents)."""
        ...

    async def usages(self, keys: list[str]) -> dict[str, Usage]:
        """usage() of each of `keys` that exists, in one pass."""
        ...

    async def mounts(self, key: str) -> list[Mount]:
        """Mounts of an active snapshot or a view; FailedPrecondition for committed."""
        ...

    async def prepare(
        self, key: str, parent: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Mount]:
        """New active snapshot on top of committed `parent`.

        AlreadyExists if `key` is taken, NotFound if `parent` does not exist,
        InvalidArgument if `parent` is not committed."""
        ...

    async def view(
        self, key: str, parent: str | None, labels: dict[str, str] | None = None
    ) -> list[Mount]:
        """Read-only snapshot of committed `parent`; same errors as prepare."""
        ...

    async def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        """Turn active `key` into committed `name`; `key` stops existing.

        The committed snapshot carries `labels` (not the active one's).
        NotFound for an unknown key, FailedPrecondition if `key` is a view or
        already committed, AlreadyExists if `name` is taken."""
        ...

    async def remove(self, key: str) -> None:
        """NotFound if unknown; FailedPrecondition if other snapshots have it as parent."""
        ...

    async def walk(self, filter: WalkFilter | None = None) -> list[Info]:
        """All snapshots (those `filter` accepts), ordered by creation."""
        ...

    async def cleanup(self) -> list[str]:
        """Delete on-disk leftovers no snapshot owns (interrupted creates/removes);
        returns what was deleted, for logging."""
        ...

    async def close(self) -> None:
        ...
