"""Connecting a terminal or pipes to a task's stdio (pyctr run / attach / tasks exec)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import threading
from typing import Any, AsyncIterator, Callable, Coroutine

from runtime.client.attach import STDERR, Attachment


async def _stdin_chunks() -> AsyncIterator[bytes]:
    """Our stdin, whatever it is (a tty, a pipe, a file, /dev/null: not all can be polled),
    read by a daemon thread so a pending read never keeps pyctr from exiting."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(8)

    def reader() -> None:
        while True:
            try:
                chunk = os.read(sys.stdin.fileno(), 32 * 1024)
            except OSError:
                chunk = b""
            asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
            if not chunk:
                return

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    while chunk := await queue.get():
        yield chunk


async def pump(att: Attachment, *, stdin: bool, terminal: bool,
               resize: Callable[[int, int], Coroutine[Any, Any, None]] | None) -> None:
    """Copy output to our stdout/stderr and (optionally) our stdin to the process until its output ends."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    async def feed() -> None:
        try:
            async for chunk in _stdin_chunks():
                await att.write(chunk)
        except Exception:
            return
        att.close_stdin()

    if stdin:
        tasks.append(asyncio.create_task(feed()))
    if terminal and resize is not None and sys.stdout.isatty():
        def on_winch() -> None:
            size = shutil.get_terminal_size()
            tasks.append(asyncio.create_task(resize(size.lines, size.columns)))

        loop.add_signal_handler(signal.SIGWINCH, on_winch)
        on_winch()
    try:
        async for stream, data in att:
            fd = sys.stderr.fileno() if stream == STDERR else sys.stdout.fileno()
            await loop.run_in_executor(None, _write_all, fd, data)
    finally:
        if terminal:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signal.SIGWINCH)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
