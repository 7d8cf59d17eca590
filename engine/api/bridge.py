"""Pumping a process's stdio to and from an attached client (hijacked socket or websocket).

dockerd's rules, which clients rely on:
- Detach keys (default ctrl-p ctrl-q) are looked for in stdin only on a terminal; the
  sequence itself never reaches the process, and detaching leaves the process running.
- When the client's stdin ends, a StdinOnce container without a terminal (and an exec
  without one) gets EOF on its stdin and the client keeps the output until the process
  exits; otherwise the process's stdin stays as it is and this client's attach ends.
"""
from __future__ import annotations

import asyncio
from enum import Enum
from typing import Protocol

from engine.api.streams import STDERR, STDOUT, frame
from runtime import client as rt
from runtime.client.attach import Attachment


class Outcome(Enum):
    EXITED = "exited"  # the process's output ended: it exited
    DETACHED = "detached"  # the client typed the detach keys
    LEFT = "left"  # the client went away or ended its stdin where that ends its attach


class ClientStream(Protocol):
    lost: asyncio.Event  # the client is gone both ways

    async def read(self) -> bytes | None:
        """The client's next stdin bytes; None once its stdin is over."""
        ...

    async def write(self, data: bytes) -> None:
        """Raises ConnectionResetError once the client is gone."""
        ...


class _DetachScanner:
    """Finds the detach sequence in stdin; bytes that may start it are held until it is decided."""

    def __init__(self, keys: bytes) -> None:
        self._keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detach requested)."""
        buf = self._held + data
        self._held = b""
        i = buf.find(self._keys)
        if i >= 0:
            return buf[:i], True
        for n in range(min(len(self._keys) - 1, len(buf)), 0, -1):
            if buf.endswith(self._keys[:n]):
                self._held = buf[-n:]
                return buf[:-n], False
        return buf, False


async def bridge(conn: ClientStream, att: Attachment, *, tty: bool, framed: bool, stdin: bool, stdout: bool,
                 stderr: bool, close_stdin: bool, detach_keys: bytes | None) -> Outcome:
    """Pump a process's output to the client and the client's bytes to its stdin, until the output ends.

    Output is in stdcopy frames when `framed`, raw otherwise. Ends early when the client goes
    away, types the detach keys, or ends its stdin where that ends the attach (see above).
    """
    wanted = {STDOUT: stdout, STDERR: stderr}
    detached = asyncio.Event()

    async def output() -> None:
        while (chunk := await att.read()) is not None:
            stream, data = chunk
            if wanted.get(stream):
                await conn.write(frame(stream, data) if framed else data)

    async def input_() -> None:
        scanner = _DetachScanner(detach_keys) if tty and detach_keys else None
        try:
            while (data := await conn.read()) is not None:
                typed = False
                if scanner is not None:
                    data, typed = scanner.feed(data)
                if data:
                    await att.write(data)
                if typed:
                    detached.set()
                    return
        except rt.FailedPrecondition:
            pass  # the process closed its stdin: it may still be writing
        else:
            if not (close_stdin and not tty):
                return
            att.close_stdin()
        await asyncio.Event().wait()  # stdin is over; the output decides the end

    out = asyncio.ensure_future(output())
    tasks = [out, asyncio.ensure_future(conn.lost.wait())]
    if stdin:
        tasks.append(asyncio.ensure_future(input_()))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        att.close()
    if out.done() and not out.cancelled() and out.exception() is None:
        return Outcome.EXITED
    return Outcome.DETACHED if detached.is_set() else Outcome.LEFT
