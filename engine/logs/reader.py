"""`docker logs` over a driver's files: the rotated ones oldest first, then the live one, which `--follow`
keeps reading as it grows and across its rotation.

`--tail` and `--since` find where to begin without reading what comes before: the live file is searched
(json-file: a binary search over line starts; local: a walk back over its framed entries), and a rotated
file is read only when what is asked for reaches into it.
"""
from __future__ import annotations

import asyncio
import collections
import io
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from engine.logs import rotation
from runtime.client.logs import LogRecord, pause

_READ = 1 << 20


class Format(Protocol):
    entry_path: str

    def encode(self, rec: LogRecord) -> bytes: ...

    def whole_lines(self, capture: bytes) -> bytes | None:
        """The entries for a capture (conmon's records, whole lines only), when the format makes them without
        a record at a time for such a capture; None to go record by record."""

    def decode(self, data: bytes) -> tuple[list[LogRecord], int]: ...

    def since_offset(self, f: BinaryIO, size: int, since: int) -> int: ...

    def tail_offset(self, f: BinaryIO, size: int, n: int) -> int: ...


@dataclass(frozen=True)
class Query:
    since: int | None = None   # ns since the epoch
    until: int | None = None
    tail: int | None = None    # the last N entries; None: all

    def kept(self, records: list[LogRecord]) -> list[LogRecord]:
        if self.since is None and self.until is None:
            return records
        since = -1 << 64 if self.since is None else self.since
        until = 1 << 64 if self.until is None else self.until
        return [rec for rec in records if since <= rec.ts <= until]


@dataclass(frozen=True)
class _Plan:
    rotated: list[tuple[io.BufferedIOBase, int | None]]  # oldest first, with how many of its last entries to keep
    offset: int                                          # where to begin in the live file


def _plan(fmt: Format, files: rotation.Opened, q: Query) -> _Plan:
    need = q.tail
    offset = 0
    if (f := files.live) is not None:
        size = os.fstat(f.fileno()).st_size
        if need is not None:
            offset = fmt.tail_offset(f, size, need)
            if offset == 0:
                f.seek(0)
                need -= len(fmt.decode(f.read(size))[0])
            else:
                need = 0
        if q.since is not None:
            offset = max(offset, fmt.since_offset(f, size, q.since))
    wanted: list[tuple[io.BufferedIOBase, int | None]] = []
    for older in reversed(files.rotated):
        if need is not None and need <= 0:
            break
        if q.since is not None and offset > 0:
            break  # the live file already starts after `since`
        wanted.append((older, need))
        if need is not None:
            need -= sum(len(batch) for batch in _batches(fmt, older))
            older.seek(0)
    wanted.reverse()
    return _Plan(wanted, offset)


async def read(fmt: Format, path: Path, q: Query, *, follow: bool = False, stop: asyncio.Event | None = None,
               catch_up: Callable[[], Awaitable[None]] | None = None, rotating: rotation.RotatingFile | None = None,
               poll_interval: float = 0.05) -> AsyncIterator[list[LogRecord]]:
    """The records asked for, a batch per read of the files (a chatty container's log is millions of records).
    Following ends once `stop` is set (after reading what the files hold by then), or once the clock passes
    `until`; `catch_up` brings the files up to date before each look at the end. `rotating`: the writer of a
    running container's files, which opens them for the reader between two of its rotations and, to follow,
    every live file it starts."""
    if catch_up is not None:
        await catch_up()
    if rotating is not None:
        files = await asyncio.to_thread(rotating.open_all, follow)
    else:
        files = await asyncio.to_thread(rotation.open_files, path)
    try:
        async for batch in _read(fmt, path, q, files, follow, stop, catch_up, poll_interval):
            yield batch
    finally:
        files.close()
        if rotating is not None and files.follower is not None:
            # In a thread: the writer holds its lock while it compresses a rotated file.
            await asyncio.to_thread(rotating.unfollow, files.follower)


async def _read(fmt: Format, path: Path, q: Query, files: rotation.Opened, follow: bool, stop: asyncio.Event | None,
                catch_up: Callable[[], Awaitable[None]] | None, poll_interval: float) -> AsyncIterator[list[LogRecord]]:
    plan = await asyncio.to_thread(_plan, fmt, files, q)
    for older, keep in plan.rotated:
        if keep is not None:
            if kept := q.kept(await asyncio.to_thread(_last, fmt, older, keep)):
                yield kept
            continue
        # A batch at a time: a rotated file is up to max-size of entries, millions of records decoded at once.
        batches = _batches(fmt, older)
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            if kept := q.kept(batch):
                yield kept
    f, files.live = files.live, None
    if f is None and not follow:
        return
    offset, pending = plan.offset, b""
    try:
        while True:
            if f is None:
                f = await _open(path)
                offset, pending = 0, b""
            stopping = stop is not None and stop.is_set()
            chunk = b""
            if f is not None:
                chunk = await asyncio.to_thread(_read_at, f, offset)
                if not chunk and await asyncio.to_thread(_rotated_away, f, path, offset, files.follower):
                    # Rotated: what reached the old file before its rename is read first, then the next file.
                    chunk = await asyncio.to_thread(_read_at, f, offset)
                    if not chunk:
                        f.close()
                        follower = files.follower
                        f = follower.next.popleft() if follower is not None and follower.next else None
                        offset, pending = 0, b""
                        continue
            if chunk:
                offset += len(chunk)
                records, used = await asyncio.to_thread(fmt.decode, pending + chunk)
                pending = (pending + chunk)[used:]
                if kept := q.kept(records):
                    yield kept
                continue
            if not follow or stopping or (q.until is not None and time.time_ns() > q.until):
                return
            await pause(poll_interval, stop)
            if catch_up is not None:
                await catch_up()
    finally:
        if f is not None:
            f.close()


def _batches(fmt: Format, f: io.BufferedIOBase) -> Iterator[list[LogRecord]]:
    """The records of a rotated file from where it stands, a read's worth at a time."""
    pending = b""
    while chunk := f.read(_READ):
        records, used = fmt.decode(pending + chunk)
        pending = (pending + chunk)[used:]
        yield records


def _last(fmt: Format, f: io.BufferedIOBase, n: int) -> list[LogRecord]:
    last: collections.deque[LogRecord] = collections.deque(maxlen=n)
    for batch in _batches(fmt, f):
        last.extend(batch)
    return list(last)


async def _open(path: Path) -> BinaryIO | None:
    try:
        return await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError:
        return None


def _read_at(f: BinaryIO, offset: int) -> bytes:
    f.seek(offset)
    return f.read(_READ)


def _rotated_away(f: BinaryIO, path: Path, offset: int, follower: rotation.Follower | None) -> bool:
    """The writer has moved on to another file: the follower has it, or the file was renamed away or truncated
    (the rotation of a driver kept to one file) by a writer that does not know this reader (one of a later run,
    or any writer when the reader has no follower)."""
    if follower is not None and (follower.next or not follower.orphaned):
        # Only the writer's word: by name, a live file it has just made could be read before it is handed over.
        return bool(follower.next)
    try:
        st = os.fstat(f.fileno())
        return os.stat(path).st_ino != st.st_ino or st.st_size < offset
    except FileNotFoundError:
        return False

