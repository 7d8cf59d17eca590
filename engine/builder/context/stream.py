"""Feeding an async byte stream (the request body, a download) to a blocking reader in a thread.

The event loop puts chunks into a channel with a fixed number of slots; the thread
reads them as a file. A slot is given back only when the thread has taken its chunk,
so at most `slots` chunks are ever held in memory, whatever the size of the stream:
a fast client waits for the disk, never the other way round.

Either side can stop the other: the reader ending (done or failed) makes the next put
raise ReaderGone; the writer aborting (client gone, task cancelled) makes the reader's
next read raise Disconnected.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import queue
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

T = TypeVar("T")

_SLOTS = 16
_BUFFER = 1 << 20


class ReaderGone(Exception):
    """The thread stopped reading (finished or failed); its own outcome says which."""


class Disconnected(Exception):
    """The stream ended before its end: the client went away or the work was cancelled."""


_EOF = b""
_ABORT = None


class Channel(io.RawIOBase):
    def __init__(self, loop: asyncio.AbstractEventLoop, slots: int = _SLOTS) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._free = asyncio.Semaphore(slots)
        self._gone = False
        self._pending = memoryview(b"")
        self._ended = False

    # The event loop's side.

    async def put(self, chunk: bytes) -> None:
        if self._gone:
            raise ReaderGone()
        await self._free.acquire()
        if self._gone:
            self._free.release()  # wake the next waiter too: it must see the reader gone as well
            raise ReaderGone()
        self._queue.put(chunk)

    def finish(self) -> None:
        self._queue.put(_EOF)

    def abort(self) -> None:
        self._queue.put(_ABORT)

    def _reader_gone(self) -> None:
        self._gone = True
        self._free.release()

    # The thread's side.

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if not self._pending:
            if self._ended:
                return 0
            chunk = self._queue.get()
            if chunk is _ABORT:
                raise Disconnected()
            if chunk is _EOF:
                self._ended = True
                return 0
            self._loop.call_soon_threadsafe(self._free.release)
            self._pending = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def reader_done(self) -> None:
        self._loop.call_soon_threadsafe(self._reader_gone)


async def settle(work: Awaitable[T]) -> T:
    """Await `work` to its end even if the caller is cancelled meanwhile; the cancellation then goes on.

    For work in threads that must not be left running behind a cancelled caller (it
    writes into a directory the caller is about to remove).
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    return result


async def consume(chunks: AsyncIterable[bytes], reader: Callable[[io.BufferedReader], T]) -> T:
    """Run `reader` in a thread over the bytes of `chunks`; its result, or its error.

    If the stream fails or the caller is cancelled, the reader is stopped and waited
    for before the error goes on, so nothing it does outlives this call.
    """
    loop = asyncio.get_running_loop()
    channel = Channel(loop)

    def run() -> T:
        try:
            return reader(io.BufferedReader(channel, _BUFFER))
        finally:
            channel.reader_done()

    worker = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        async for chunk in chunks:
            if chunk:
                await channel.put(chunk)
        channel.finish()
    except ReaderGone:
        pass  # the reader's own outcome (an error, or done early) is what counts
    except BaseException:
        channel.abort()
        with contextlib.suppress(BaseException):
            await settle(worker)  # its Disconnected, or a cancellation that arrived meanwhile: the stream's error wins
        raise
    return await worker
