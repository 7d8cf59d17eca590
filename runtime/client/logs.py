"""Reading task logs (conmon's k8s-file format), given the log path from the task's io: engine and pyctr use it.

One record per line: `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>`. conmon
splits long lines and lines still unterminated when it reads them into `P` (partial)
records continued by the next record of the stream; `F` ends a line whose newline it
dropped. Records here give the bytes back as written: a full line ends with b"\\n".
"""
from __future__ import annotations

import asyncio
import calendar
import contextlib
import functools
import os
import re
import time
from collections.abc import AsyncIterator
from typing import BinaryIO, NamedTuple

from runtime.errors import InvalidArgument

_TS = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}
_READ_SIZE = 256 * 1024
_TAIL_BLOCK = 64 * 1024


class LogRecord(NamedTuple):
    # A tuple: a chatty container's log makes a million of these in a few seconds.
    ts: int          # nanoseconds since the epoch
    stream: str      # "stdout" or "stderr"
    data: bytes      # the bytes the process wrote; a full line ends with b"\n"
    partial: bool    # the line goes on in the stream's next record


@functools.lru_cache(maxsize=64)
def epoch_seconds(clock: bytes, zone: bytes) -> int:
    """`clock`: YYYY-MM-DDTHH:MM:SS; `zone`: Z or +HH:MM/-HH:MM."""
    # Lines come many to a second: the calendar is worked out once for each second.
    seconds = calendar.timegm((int(clock[0:4]), int(clock[5:7]), int(clock[8:10]), int(clock[11:13]),
                               int(clock[14:16]), int(clock[17:19]), 0, 0, 0))
    if zone != b"Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[:1] == b"+" else -offset
    return seconds


def parse_timestamp(text: bytes | str) -> int:
    """An RFC 3339 timestamp (any fraction up to nanoseconds, Z or an offset) in ns since the epoch."""
    raw = text.encode() if isinstance(text, str) else text
    m = _TS.fullmatch(raw)
    if m is None:
        raise InvalidArgument(f"invalid timestamp {raw!r}")
    clock, fraction, zone = m.groups()
    try:
        seconds = epoch_seconds(clock, zone)
    except ValueError:
        raise InvalidArgument(f"invalid timestamp {raw!r}") from None
    return seconds * 1_000_000_000 + (int(fraction.ljust(9, b"0")) if fraction else 0)


def parse_line(line: bytes) -> LogRecord:
    """One log line, without its trailing newline."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAMS or parts[2] not in (b"F", b"P"):
        raise InvalidArgument(f"not a k8s-file log line: {line[:80]!r}")
    partial = parts[2] == b"P"
    content = parts[3] if len(parts) == 4 else b""
    return LogRecord(parse_timestamp(parts[0]), _STREAMS[parts[1]], content if partial else content + b"\n", partial)


def parse(data: bytes) -> list[LogRecord]:
    """Every complete line of `data`; an unterminated last line is left out."""
    return [parse_line(line) for line in data.split(b"\n")[:-1]]


def _is_partial(line: bytes) -> bool:
    parts = line.split(b" ", 3)
    return len(parts) >= 3 and parts[2] == b"P"


def _tail_offset(f: BinaryIO, n: int) -> int:
    """Where the last `n` lines of the file begin (a P...P F chain is one line)."""
    end = f.seek(0, os.SEEK_END)
    pos, buf = end, b""
    while True:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
        if n == 0:
            # Just past the last complete line: one still being written is read when done.
            nl = buf.rfind(b"\n")
            if nl >= 0 or pos == 0:
                return pos + nl + 1
            continue
        # The first line of the block may be cut, unless the block starts the file.
        first = 0 if pos == 0 else buf.find(b"\n") + 1
        if first == 0 and pos > 0:
            continue
        lines = buf[first:].split(b"\n")[:-1]
        # A line starts a logical line if it opens the file or follows an F record.
        starts = [0] if pos == 0 and lines else []
        starts += [i for i in range(1, len(lines)) if not _is_partial(lines[i - 1])]
        if len(starts) >= n or pos == 0:
            if not starts:
                return pos + first
            i = starts[-n] if len(starts) >= n else starts[0]
            return pos + first + sum(len(line) + 1 for line in lines[:i])


def _renamed_over(f: BinaryIO, path: str) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


async def pause(interval: float, stop: asyncio.Event | None) -> None:
    """Sleep `interval`, or less if `stop` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(interval)
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(interval):
            await stop.wait()


async def follow(
    path: str,
    *,
    since: int | None = None,
    until: int | None = None,
    tail: int | None = None,
    follow: bool = False,
    stop: asyncio.Event | None = None,
    poll_interval: float = 0.05,
) -> AsyncIterator[LogRecord]:
    """The records of a log file, optionally following it as it grows (`logs -f`).

    `tail` keeps only the last N lines (then `since`/`until`, ns since the epoch, filter
    by timestamp). Following polls every `poll_interval`, waits for a file not created
    yet, and ends once `stop` is set (after reading what the file holds by then: set it
    when the process's exit is known, conmon has flushed the log before recording that)
    or once the clock passes `until`. Without `follow` the iteration ends at the end of
    the file.
    """
    opened: BinaryIO | None = None
    while opened is None:
        try:
            opened = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            if not follow or (stop is not None and stop.is_set()):
                return
            await pause(poll_interval, stop)
    f: BinaryIO = opened
    try:
        if tail is not None:
            await asyncio.to_thread(lambda: f.seek(_tail_offset(f, max(tail, 0))))
        pending = b""
        while True:
            # Sampled before reading, so the read that ends the iteration follows the stop.
            stopping = stop is not None and stop.is_set()
            chunk = await asyncio.to_thread(f.read, _READ_SIZE)
            if chunk:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    try:
                        record = parse_line(line)
                    except InvalidArgument:
                        # A torn line (a crash mid-write) must not end `logs` for the rest.
                        continue
                    if (since is None or record.ts >= since) and (until is None or record.ts <= until):
                        yield record
                continue
            if await asyncio.to_thread(_renamed_over, f, path):
                # conmon started its log over (the runtime bounds it): go on with the new file.
                f.close()
                f = await asyncio.to_thread(open, path, "rb")
                pending = b""
                continue
            if not follow or stopping or (until is not None and time.time_ns() > until):
                return
            await pause(poll_interval, stop)
    finally:
        f.close()
