"""json-file, Docker's own on-disk log format: one JSON object per line, `{"log": ..., "stream": ..., "time": ...}`
(with `attrs` between stream and time when labels, env or a tag ask for them), the time in RFC 3339 with
nanoseconds and no trailing zeros, as Go writes it. Log shippers that tail Docker's files read these.
"""
from __future__ import annotations

import functools
import json
import time
from typing import BinaryIO

from runtime.client import RuntimeError_
from runtime.client.logs import LogRecord, parse_timestamp

NAME = "json-file"
_BLOCK = 64 * 1024
# Go's encoder escapes these for HTML safety; dockerd's files have them escaped.
_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_HTML_CHARS = ("<", ">", "&", "\u2028", "\u2029")
_STREAMS = {"stdout": b"stdout", "stderr": b"stderr"}


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    # Shipping encodes many entries per second: the date is made once for each.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def go_time(ns: int) -> str:
    """RFC 3339 in UTC with the fraction Go's RFC3339Nano keeps: trailing zeros dropped."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = _second(seconds)
    frac = f"{fraction:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


class JsonFile:
    """Encodes and decodes the format; `attrs` (already JSON) goes into every line."""

    entry_path = "{id}-json.log"

    def __init__(self, attrs: dict[str, str] | None = None) -> None:
        self._attrs = (b'"attrs":' + json.dumps(attrs, separators=(",", ":")).encode() + b",") if attrs else b""

    def encode(self, rec: LogRecord) -> bytes:
        # Invalid UTF-8 becomes U+FFFD, as Go's encoder writes it.
        text = json.dumps(rec.data.decode("utf-8", "replace"), ensure_ascii=False)
        if any(c in text for c in _HTML_CHARS):
            text = text.translate(_HTML)
        return (b'{"log":' + text.encode() + b',"stream":"' + _STREAMS[rec.stream] + b'",' + self._attrs
                + b'"time":"' + go_time(rec.ts).encode() + b'"}\n')

    @staticmethod
    def decode(data: bytes) -> tuple[list[LogRecord], int]:
        """The records of the complete lines in `data`, and how many bytes they took."""
        end = data.rfind(b"\n") + 1
        out = []
        for line in data[:end].split(b"\n")[:-1]:
            rec = _record(line)
            if rec is not None:
                out.append(rec)
        return out, end

    @staticmethod
    def since_offset(f: BinaryIO, size: int, since: int) -> int:
        """Where the first line stamped at or after `since` starts: a binary search over line starts."""
        lo, hi = 0, size
        while lo < hi:
            mid = (lo + hi) // 2
            start = _line_start_after(f, mid, size)
            if start >= size:
                hi = mid
                continue
            ts = _time_at(f, start)
            if ts is None or ts >= since:
                hi = mid
            else:
                lo = start + 1
        return _line_start_after(f, lo, size) if lo else 0

    @staticmethod
    def tail_offset(f: BinaryIO, size: int, n: int) -> int:
        """Where the last `n` lines of the first `size` bytes begin."""
        if n <= 0:
            return size
        pos, found = size, 0
        while pos > 0:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            # Newlines end lines; the one ending the last line does not start one.
            at = len(block) if pos + step < size else len(block) - 1
            while True:
                at = block.rfind(b"\n", 0, at)
                if at < 0:
                    break
                found += 1
                if found == n:
                    return pos + at + 1
        return 0


def _record(line: bytes) -> LogRecord | None:
    try:
        doc = json.loads(line)
        data = doc["log"].encode()
        return LogRecord(ts=parse_timestamp(doc["time"]), stream=doc["stream"], data=data,
                         partial=not data.endswith(b"\n"))
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError_):
        return None  # a torn line (a crash mid-write) must not end `logs` for the rest


def _line_start_after(f: BinaryIO, pos: int, size: int) -> int:
    """The first line start at or after `pos` (pos itself when a line starts there)."""
    if pos == 0:
        return 0
    f.seek(pos - 1)
    while pos <= size:
        block = f.read(_BLOCK)
        if not block:
            return size
        nl = block.find(b"\n")
        if nl >= 0:
            return pos + nl
        pos += len(block)
    return size


def _time_at(f: BinaryIO, start: int) -> int | None:
    f.seek(start)
    line = f.readline()
    key = line.rfind(b'"time":"')
    if key < 0:
        return None
    end = line.find(b'"', key + 8)
    try:
        return parse_timestamp(line[key + 8:end])
    except RuntimeError_:
        return None
