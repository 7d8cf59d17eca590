"""Client-driven content ingests over HTTP (containerd's content Writer, one request per step).

An ingest is opened by ref, written at explicit offsets by any number of requests, then
committed with the size and digest the client expects: only bytes that verify become a
blob, recorded under the committing request's lease with its GC refs. Between requests
the open writer is kept here (its running hash makes each write O(bytes sent)); one left
idle is closed after IDLE_CLOSE seconds, its bytes staying on disk for a later resume.
Refs are namespaced: two namespaces may use the same ref without meeting.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from runtime.content.local import LocalWriter
from runtime.content.store import ContentInfo, IngestStatus
from runtime.errors import Conflict, DataLoss, InvalidArgument, NotFound
from runtime.metadata.content import ContentService
from runtime.namespaces import require_namespace
from runtime.oci import validate_digest

IDLE_CLOSE = 600.0
# Bytes gathered before one hop to the writer thread.
_WRITE_BATCH = 1 << 20
REF_KINDS = frozenset({"content", "snapshot"})


@dataclass
class _Open:
    writer: LocalWriter
    expected: str | None
    total: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    used: float = field(default_factory=time.monotonic)


class IngestService:
    def __init__(self, content: ContentService) -> None:
        self._content = content
        self._open: dict[str, _Open] = {}

    @staticmethod
    def _key(ref: str) -> str:
        if not ref or len(ref) > 512:
            raise InvalidArgument("ingest ref must be 1 to 512 characters")
        return f"{require_namespace()}/{ref}"

    def _status(self, ref: str, o: _Open) -> IngestStatus:
        return IngestStatus(ref=ref, offset=o.writer.offset, total=o.total, expected=o.expected, updated=time.time())

    async def _close_idle(self) -> None:
        now = time.monotonic()
        for key, o in list(self._open.items()):
            if now - o.used > IDLE_CLOSE and not o.lock.locked():
                del self._open[key]
                await asyncio.to_thread(o.writer.close)

    async def open(self, ref: str, expected: str | None, total: int | None) -> IngestStatus:
        """Open or resume `ref`; a different `expected` than the ingest had restarts it."""
        key = self._key(ref)
        if expected is not None:
            validate_digest(expected)
        if total is not None and total < 0:
            raise InvalidArgument("total must not be negative")
        await self._close_idle()
        o = self._open.get(key)
        if o is not None and (expected, total or 0) != (o.expected, o.total):
            async with o.lock:
                self._open.pop(key, None)
                await asyncio.to_thread(o.writer.close)
            o = None
        if o is None:
            writer = await self._content.writer(key, expected, total or 0)
            o = self._open[key] = _Open(writer, expected, total or 0)
        o.used = time.monotonic()
        return self._status(ref, o)

    async def _get(self, ref: str) -> tuple[str, _Open]:
        key = self._key(ref)
        o = self._open.get(key)
        if o is None:
            # Closed while idle or by a daemon restart: whatever is on disk resumes.
            on_disk = next((s for s in await self._content.ingests() if s.ref == key), None)
            if on_disk is None:
                raise NotFound(f"ingest {ref!r} not found")
            await self.open(ref, on_disk.expected, on_disk.total or None)
            o = self._open[key]
        o.used = time.monotonic()
        return key, o

    async def status(self, ref: str) -> IngestStatus:
        _, o = await self._get(ref)
        return self._status(ref, o)

    async def write(self, ref: str, offset: int, body: AsyncIterator[bytes]) -> IngestStatus:
        """Append the streamed body at `offset`, which must be where the ingest is (0 restarts it).

        Bytes that arrived before the client went away are kept: the next write resumes after them.
        """
        _, o = await self._get(ref)
        async with o.lock:
            w = o.writer
            if offset == 0 and w.offset:
                await asyncio.to_thread(w.truncate)
            elif offset != w.offset:
                raise Conflict(f"ingest {ref!r} is at offset {w.offset}, not {offset}: write from {w.offset}"
                               " or from 0 to start over")
            batch = bytearray()

            async def flush() -> None:
                await asyncio.to_thread(w.write, bytes(batch))
                batch.clear()

            try:
                async for chunk in body:
                    if o.total and w.offset + len(batch) + len(chunk) > o.total:
                        # Bytes up to the total stay (a resume starts after them); none past it is written.
                        batch += chunk[:o.total - w.offset - len(batch)]
                        raise InvalidArgument(f"ingest {ref!r} would grow past its total of {o.total} bytes")
                    batch += chunk
                    if len(batch) >= _WRITE_BATCH:
                        await flush()
            finally:
                if batch:
                    await flush()
            o.used = time.monotonic()
            return self._status(ref, o)

    async def commit(self, ref: str, size: int, digest: str, refs: list[tuple[str, str]],
                     labels: dict[str, str]) -> ContentInfo:
        """Verify and publish; a size or digest that does not match is DataLoss and stores nothing."""
        validate_digest(digest)
        for kind, target in refs:
            if kind not in REF_KINDS:
                raise InvalidArgument(f"invalid ref kind {kind!r}: expected content or snapshot")
            if kind == "content":
                validate_digest(target)
        key, o = await self._get(ref)
        async with o.lock:
            if o.expected is not None and digest != o.expected:
                raise InvalidArgument(f"ingest {ref!r} was opened for {o.expected}, not {digest}")
            if o.writer.offset != size:
                raise DataLoss(f"unexpected commit size {o.writer.offset}, expected {size} for {digest}")
            try:
                await self._content.commit(o.writer, size, digest, refs)
            except DataLoss:
                # The writer dropped the bytes already (a digest mismatch leaves no ingest).
                self._open.pop(key, None)
                raise
            self._open.pop(key, None)
        if labels:
            info = await self._content.info(digest)
            return await self._content.set_labels(digest, {**info.labels, **labels})
        return await self._content.info(digest)

    async def abort(self, ref: str) -> None:
        key = self._key(ref)
        o = self._open.pop(key, None)
        if o is not None:
            async with o.lock:
                await asyncio.to_thread(o.writer.close)
        elif not any(s.ref == key for s in await self._content.ingests()):
            raise NotFound(f"ingest {ref!r} not found")
        await self._content.abort(key)
