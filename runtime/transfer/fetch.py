"""Fetch blobs into the content store: resumable, verified, one download per blob.

Concurrent pulls of the same blob share one download task; each pull then
records the blob in its own namespace. Ingests are named by digest, so a pull
interrupted by a crash or a disconnect resumes from the bytes already stored.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from runtime.content.local import LocalWriter
from runtime.diff.verify import DiffDigester
from runtime.errors import DataLoss, NotFound, Unavailable
from runtime.metadata.content import ContentService
from runtime.oci import Descriptor
from runtime.transfer.progress import BlobProgress

log = logging.getLogger("runtime.transfer")

# Large enough that the thread hop per write is noise next to hashing it.
_WRITE_BATCH = 1 << 20
_ATTEMPTS = 5

# containerd's name for the same fact, so the label reads the same to anyone who knows it.
UNCOMPRESSED_LABEL = "containerd.io/uncompressed"

BlobSource = Callable[[Descriptor, int], Awaitable[Any]]


class Fetcher:
    def __init__(self, content: ContentService, max_concurrent: int = 4) -> None:
        self._content = content
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_concurrent)

    def resize(self, max_concurrent: int) -> None:
        """A new bound for downloads started from now on (a reload); those under way finish under the old one."""
        self._slots = asyncio.Semaphore(max_concurrent)

    async def ensure(self, desc: Descriptor, source: BlobSource, progress: BlobProgress,
                     refs: list[tuple[str, str]], report: Callable[[BlobProgress, str | None], None],
                     compression: str | None = None) -> None:
        """Make `desc` present in the current namespace (with its GC refs).

        With `compression` (a layer), the uncompressed digest is computed on the
        way in and stored as the blob's UNCOMPRESSED_LABEL when the whole blob
        passed through in one go.
        """
        if await self._content.hold(desc.digest, refs):
            report(progress, "exists")
            return
        for _ in range(3):
            if await self._content.share(desc.digest, refs):
                if progress.status not in ("downloaded",):
                    progress.current = desc.size
                    report(progress, "exists" if progress.status == "waiting" else "downloaded")
                return
            task = self._inflight.get(desc.digest)
            if task is None:
                task = asyncio.create_task(self._download(desc, source, progress, refs, report, compression))
                self._inflight[desc.digest] = task
                digest = desc.digest
                task.add_done_callback(lambda _t: self._inflight.pop(digest, None))
                # The download belongs to whoever started it; a waiter that goes
                # away must not cancel it for the others.
                await asyncio.shield(task)
                return
            report(progress, "waiting")
            await asyncio.shield(task)
        raise NotFound(f"blob {desc.digest} vanished while being shared")

    async def _download(self, desc: Descriptor, source: BlobSource, progress: BlobProgress,
                        refs: list[tuple[str, str]], report: Callable[[BlobProgress, str | None], None],
                        compression: str | None) -> None:
        async with self._slots:
            writer = await self._content.writer(f"fetch-{desc.digest}", desc.digest, desc.size)
            sink = _Sink(writer, compression)
            try:
                resumed = writer.offset
                for attempt in range(_ATTEMPTS):
                    if desc.size > 0 and writer.offset >= desc.size:
                        break
                    try:
                        await self._copy(desc, source, sink, progress, report)
                        break
                    except Unavailable as e:
                        # A cut connection: what arrived is kept, the next request resumes after it.
                        if attempt == _ATTEMPTS - 1:
                            raise
                        log.warning("blob=%s interrupted at=%d retrying: %s", desc.digest, writer.offset, e.message)
                progress.current = writer.offset
                report(progress, "verifying")
                await self._content.commit(writer, desc.size, desc.digest, refs)
                if sink.diff is not None:
                    await self._content.set_label(desc.digest, UNCOMPRESSED_LABEL, sink.diff.digest())
                if resumed:
                    log.info("blob=%s resumed_from=%d size=%d", desc.digest, resumed, desc.size)
                report(progress, "downloaded")
            finally:
                await asyncio.to_thread(writer.close)

    async def _copy(self, desc: Descriptor, source: BlobSource, sink: "_Sink", progress: BlobProgress,
                    report: Callable[[BlobProgress, str | None], None]) -> None:
        writer = sink.writer
        stream = await source(desc, writer.offset)
        async with stream:
            if stream.start_offset != writer.offset:
                await asyncio.to_thread(sink.truncate)
            progress.current = writer.offset
            report(progress, "downloading")
            buf = bytearray()
            try:
                async for chunk in stream:
                    buf += chunk
                    if desc.size > 0 and writer.offset + len(buf) > desc.size:
                        # A registry sending more than the blob's size (without a Content-Length to refuse it
                        # by): stop reading now rather than store what can never match.
                        buf.clear()
                        await asyncio.to_thread(sink.truncate)
                        raise DataLoss(f"{desc.digest}: the registry sent more than the blob's {desc.size} bytes")
                    if len(buf) >= _WRITE_BATCH:
                        await asyncio.to_thread(sink.write, bytes(buf))
                        progress.current = writer.offset
                        buf.clear()
                        report(progress, None)
                if buf:
                    await asyncio.to_thread(sink.write, bytes(buf))
                    buf.clear()
                # The last bytes are told too (dockerd's progress reader reports at EOF): a blob smaller than a
                # batch would otherwise show no progress at all.
                progress.current = writer.offset
                report(progress, None)
            finally:
                # Keep every byte that arrived, even when the stream broke: a resume starts after it.
                if buf:
                    await asyncio.to_thread(sink.write, bytes(buf))


class _Sink:
    """Where downloaded bytes go: the ingest, and the diff digester while it can follow.

    A digester only sees a blob from its first byte; a resumed ingest gets none
    and the unpack verifies the diff_id itself."""

    def __init__(self, writer: LocalWriter, compression: str | None) -> None:
        self.writer = writer
        self._compression = compression
        self.diff = DiffDigester(compression) if compression is not None and writer.offset == 0 else None

    def write(self, data: bytes) -> None:
        self.writer.write(data)
        if self.diff is not None:
            try:
                self.diff.feed(data)
            except DataLoss:
                # The blob's own digest check decides; the unpack re-verifies.
                self.diff = None

    def truncate(self) -> None:
        self.writer.truncate()
        if self._compression is not None:
            self.diff = DiffDigester(self._compression)
