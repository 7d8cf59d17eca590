"""The Snapshotter implementation shared by the directory-based snapshotters.

Overlay and native differ only in how a new snapshot directory is filled from its
parents and which mounts expose it; metadata, lifecycle and error semantics live
here (and in storage.Storage, whose blocking calls run in worker threads).
"""
from __future__ import annotations

import abc
import asyncio
import contextlib

from runtime.errors import FailedPrecondition, Internal, InvalidArgument, NotFound
from runtime.mount import Mount
from runtime.snapshots.fsutil import disk_usage
from runtime.snapshots.snapshotter import Info, Kind, Usage, WalkFilter
from runtime.snapshots.storage import Record, Storage


class LocalSnapshotter(abc.ABC):
    def __init__(self, root: str) -> None:
        self._storage = Storage(root)
        self.root = self._storage.root

    @abc.abstractmethod
    def _lay_out(self, path: str, parents: list[Record]) -> bool:
        """Make the directories the build dir `path` of a new snapshot needs, in the worker thread that
        allocates it; False if `_fill` must still copy its parent in (`path`/fs must exist after either)."""

    async def _fill(self, path: str, parents: list[Record]) -> None:
        raise Internal(f"{type(self).__name__} laid out a snapshot it cannot fill")

    @abc.abstractmethod
    def _mounts(self, rec: Record, parents: list[Record]) -> list[Mount]:
        """Mounts exposing active/view `rec` whose ancestors are `parents`, nearest first."""

    async def stat(self, key: str) -> Info:
        return (await asyncio.to_thread(self._storage.get, key)).info()

    async def update(self, info: Info, fieldpaths: list[str] | None = None) -> Info:
        paths = fieldpaths or ["labels"]
        for path in paths:
            if path != "labels" and not (path.startswith("labels.") and len(path) > len("labels.")):
                raise InvalidArgument(
                    f"cannot update field {path!r} of snapshot {info.name!r}: only labels are mutable"
                )

        def apply(labels: dict[str, str]) -> dict[str, str]:
            for path in paths:
                if path == "labels":
                    labels = dict(info.labels)
                    continue
                label = path[len("labels.") :]
                if label in info.labels:
                    labels[label] = info.labels[label]
                else:
                    labels.pop(label, None)
            return labels

        return (await asyncio.to_thread(self._storage.update_labels, info.name, apply)).info()

    async def usage(self, key: str) -> Usage:
        return await asyncio.to_thread(self._measure, key)

    async def usages(self, keys: list[str]) -> dict[str, Usage]:
        def measure_all() -> dict[str, Usage]:
            found = {}
            for key in keys:
                with contextlib.suppress(NotFound):
                    found[key] = self._measure(key)
            return found

        return await asyncio.to_thread(measure_all)

    def _measure(self, key: str) -> Usage:
        rec = self._storage.get(key)
        if rec.usage is not None:
            return rec.usage
        try:
            usage = disk_usage(self._storage.fs_dir(rec.id))
        except FileNotFoundError:
            raise NotFound(f"snapshot {key!r} was removed while measuring it") from None
        if rec.kind is Kind.COMMITTED:
            self._storage.record_usage(rec.id, usage)
        return usage

    async def mounts(self, key: str) -> list[Mount]:
        rec, parents = await asyncio.to_thread(self._storage.chain, key)
        if rec.kind is Kind.COMMITTED:
            raise FailedPrecondition(f"snapshot {key!r} is committed; only active snapshots and views have mounts")
        return self._mounts(rec, parents)

    async def prepare(
        self, key: str, parent: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Mount]:
        return await self._create(key, parent, Kind.ACTIVE, labels)

    async def view(
        self, key: str, parent: str | None, labels: dict[str, str] | None = None
    ) -> list[Mount]:
        return await self._create(key, parent, Kind.VIEW, labels)

    async def _create(
        self, key: str, parent: str | None, kind: Kind, labels: dict[str, str] | None
    ) -> list[Mount]:
        fields = dict(labels or {})

        def begin() -> tuple[str, list[Record], tuple[Record, list[Record]] | None]:
            tmp, parents = self._storage.begin_create(key, parent)
            try:
                complete = self._lay_out(tmp, parents)
            except BaseException:
                self._storage.abort_create(tmp)
                raise
            # Nothing to copy (overlay, or no parent): published in the same worker call, one hop per prepare.
            return tmp, parents, self._storage.finish_create(tmp, key, parent, kind, fields) if complete else None

        tmp, parents, done = await asyncio.to_thread(begin)
        if done is None:
            try:
                await self._fill(tmp, parents)
            except BaseException:
                await asyncio.to_thread(self._storage.abort_create, tmp)
                raise
            done = await asyncio.to_thread(self._storage.finish_create, tmp, key, parent, kind, fields)
        return self._mounts(*done)

    async def commit(self, name: str, key: str, labels: dict[str, str] | None = None) -> None:
        def commit() -> None:
            rec = self._storage.get(key)
            if rec.kind is not Kind.ACTIVE:
                raise FailedPrecondition(
                    f"snapshot {key!r} is {rec.kind.value}, only active snapshots can be committed"
                )
            # Measured once here: a committed snapshot never changes, so usage() can answer from the db.
            usage = disk_usage(self._storage.fs_dir(rec.id))
            self._storage.commit(name, key, dict(labels or {}), usage)

        await asyncio.to_thread(commit)

    async def remove(self, key: str) -> None:
        await asyncio.to_thread(self._storage.remove, key)

    async def walk(self, filter: WalkFilter | None = None) -> list[Info]:
        infos = [r.info() for r in await asyncio.to_thread(self._storage.walk)]
        return [i for i in infos if filter is None or filter(i)]

    async def cleanup(self) -> list[str]:
        return await asyncio.to_thread(self._storage.cleanup)

    async def usage_by_kind(self) -> dict[Kind, Usage]:
        """Space used by all snapshots of each kind: committed ones as measured at commit, the others now."""
        def measure() -> dict[Kind, Usage]:
            totals = {kind: Usage() for kind in Kind}
            for rec in self._storage.walk():
                try:
                    usage = rec.usage if rec.usage is not None else disk_usage(self._storage.fs_dir(rec.id))
                except FileNotFoundError:
                    continue  # removed while measuring
                totals[rec.kind].size += usage.size
                totals[rec.kind].inodes += usage.inodes
                totals[rec.kind].content += usage.content
            return totals

        return await asyncio.to_thread(measure)

    async def close(self) -> None:
        await asyncio.to_thread(self._storage.close)
