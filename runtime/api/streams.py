"""Streamed bodies: NDJSON answers, answers written by a blocking thread (tars), and uploads read as they come."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, AsyncGenerator, AsyncIterator, BinaryIO, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from runtime import errors, nospace
from runtime.api.errors import error_body
from runtime.api.routing import Stream

log = logging.getLogger("runtime.api")

T = TypeVar("T")

NDJSON = "application/x-ndjson"
_CHUNK = 1 << 16
# Follow-up work of finished streams, kept referenced until it is done.
_background: set[asyncio.Future[None]] = set()


class ClientDisconnect(Exception):
    """The client went away before its upload ended."""


def ndjson(lines: AsyncGenerator[dict[str, Any], None]) -> Stream:
    async def body() -> AsyncGenerator[bytes, None]:
        try:
            async for obj in lines:
                yield (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        finally:
            await lines.aclose()  # now, not when collected: a pull's task stops with its reader

    return Stream(body(), NDJSON)


async def upload(request: web.Request) -> AsyncIterator[bytes]:
    """The request's body as it arrives (never all of it in memory: aiohttp stops reading while we lag)."""
    try:
        async for chunk in request.content.iter_any():
            yield chunk
    except (ConnectionError, HttpProcessingError):
        raise ClientDisconnect() from None


async def progress_lines(task: asyncio.Task[T], events: asyncio.Queue[dict[str, Any]], what: str,
                         done: Callable[[T], dict[str, Any]]) -> AsyncGenerator[dict[str, Any], None]:
    """The progress `task` reports on `events`, then `done(result)` or the error as the last line.

    Errors found before the stream (a malformed reference) are the caller's plain 4xx; later ones arrive
    as the last line, since the status is already sent. A client that goes away stops the task.
    """
    try:
        while True:
            getter = asyncio.ensure_future(events.get())
            finished, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in finished:
                yield getter.result()
                continue
            getter.cancel()
            while not events.empty():
                yield events.get_nowait()
            break
        try:
            result = task.result()
        except errors.RuntimeError_ as e:
            yield error_body(e)
            return
        except RecursionError:  # as the middleware (runtime/api/errors.py) tells it
            yield error_body(errors.InvalidArgument(f"{what} failed: invalid JSON document: exceeded max depth"))
            return
        except Exception as e:
            yield error_body(nospace.explain(e) or errors.Internal(f"{what} failed: {type(e).__name__}: {e}"))
            return
        yield done(result)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class _Pipe:
    """The writer thread's file: gathers writes into chunks for the event loop; fails once the reader is gone."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None], chunk: int) -> None:
        self._loop = loop
        self._queue = queue
        self._chunk = chunk
        self._buf = bytearray()
        self._written = 0
        self.closed = False

    def tell(self) -> int:
        return self._written

    def write(self, data: bytes) -> int:
        if self.closed:
            raise BrokenPipeError("the reader went away")
        self._written += len(data)
        if not self._buf and len(data) >= self._chunk:
            self._put(bytes(data))  # already a whole chunk (a blob's read): no copy into the buffer
            return len(data)
        self._buf += data
        if len(self._buf) >= self._chunk:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()

    def end(self) -> None:
        if not self.closed:
            self._put(None)

    def _put(self, item: bytes | None) -> None:
        done = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        while True:
            try:
                done.result(timeout=1)
                return
            except concurrent.futures.TimeoutError:
                if self.closed:  # nobody will ever take it
                    done.cancel()
                    raise BrokenPipeError("the reader went away") from None

    def close(self) -> None:
        """From the loop: stop the writer (its next write fails) and unblock a put in flight."""
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()


async def thread_body(work: Callable[[BinaryIO], None], after: Callable[[], Awaitable[None]],
                      chunk: int = _CHUNK) -> AsyncGenerator[bytes, None]:
    """What blocking `work` writes to its file, run in a thread; `after` runs once that thread is done.

    On a complete stream `after` has finished before the body ends, so a client that
    saw the end finds its resources given back. A client that leaves early stops the
    writer at its next write, and `after` still runs. An error in the writer after the
    response started cuts the stream short (the client sees a broken body rather than
    a complete-looking one) and is logged here.
    """
    loop = asyncio.get_running_loop()
    # Each chunk costs a thread hop and a send: a big `chunk` (stored blobs) spends less on both.
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=max(2, 8 * _CHUNK // chunk))
    pipe = _Pipe(loop, queue, chunk)
    after_done: asyncio.Future[None] = loop.create_future()

    def run() -> None:
        try:
            work(pipe)  # type: ignore[arg-type]
            pipe.flush()
        finally:
            pipe.end()

    async def follow_up() -> None:
        try:
            await after()
        finally:
            after_done.set_result(None)

    def finished(task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not pipe.closed:
            log.error("streaming a response failed: %s", task.exception())
        follow = asyncio.ensure_future(follow_up())
        _background.add(follow)
        follow.add_done_callback(_background.discard)

    worker = asyncio.ensure_future(asyncio.to_thread(run))
    worker.add_done_callback(finished)
    try:
        while (data := await queue.get()) is not None:
            yield data
        await worker
        await asyncio.shield(after_done)
    finally:
        pipe.close()
