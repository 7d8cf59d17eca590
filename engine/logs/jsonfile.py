"""json-file, Docker's own on-disk log format: one JSON object per line, `{"log": ..., "stream": ..., "time": ...}`
(with `attrs` between stream and time when labels, env or a tag ask for them), the time in RFC 3339 with
nanoseconds and no trailing zeros, as Go writes it. Log shippers that tail Docker's files read these.
"""
from __future__ import annotations

import functools
import json
import re
import time
from typing import BinaryIO

from runtime.client import RuntimeError_
from runtime.client.logs import LogRecord, epoch_seconds, parse_timestamp

NAME = "json-file"
_BLOCK = 64 * 1024
# Go's encoder escapes these for HTML safety; dockerd's files have them escaped.
_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_HTML_CHARS = ("<", ">", "&", "\u2028", "\u2029")
_STREAMS = {"stdout": b"stdout", "stderr": b"stderr"}
_STREAM_NAMES = {b"stdout": "stdout", b"stderr": "stderr"}
# Printable ASCII that JSON and Go's HTML escaping leave as it is: most lines, quoted without an encoder.
_PLAIN = re.compile(rb'[ !#-%\'-;=?-\[\]-~]*')


# One of conmon's records of a whole line, stamped in UTC with nanoseconds (as conmon stamps them on a host in
# UTC), at the start of a line: its clock, its fraction without trailing zeros, its stream and its text.
_WHOLE_RECORD = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:(?=\.\d{9}(?:Z|\+00:00) )(\.\d{0,8}[1-9])0*|\.0{9})?"
                           rb"(?:Z|\+00:00) (stdout|stderr) F(?: ([^\n]*))?\n", re.MULTILINE)
# What the encoder escapes as a sequence of its own (the rest of the control characters are left to it).
_ESCAPES = ((b"\\", b"\\\\"), (b'"', b'\\"'), (b"\t", b"\\t"), (b"<", b"\\u003c"), (b">", b"\\u003e"),
            (b"&", b"\\u0026"))
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f]")


# An entry as encode() writes a record of text that needs no escape but a line's newline, stamped in UTC, at the
# start of a line: its text, its newline, its stream, its clock and its fraction.
_PLAIN_ENTRY = re.compile(rb'^\{"log":"([^"\\\n]*)(\\n)?","stream":"(stdout|stderr)",(?:"attrs":\{[^\n]*?\},)?'
                          rb'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z"\}\n', re.MULTILINE)


def _utc_ns(clock: bytes, fraction: bytes) -> int:
    return epoch_seconds(clock, b"Z") * 1_000_000_000 + (int(fraction.ljust(9, b"0")) if fraction else 0)


def _quoted(data: bytes) -> bytes:
    # Invalid UTF-8 becomes U+FFFD, as Go's encoder writes it.
    text = json.dumps(data.decode("utf-8", "replace"), ensure_ascii=False)
    if any(c in text for c in _HTML_CHARS):
        text = text.translate(_HTML)
    return text.encode()


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

    def whole_lines(self, capture: bytes) -> bytes | None:
        """The entries of a capture made only of records of whole lines stamped in UTC (most captures), made
        by escaping the whole capture at once and a substitution per record instead of a JSON encoder."""
        if _CONTROL.search(capture):
            return None
        if not capture.isascii():
            try:
                capture.decode()
            except UnicodeDecodeError:
                return None
            if b"\xe2\x80\xa8" in capture or b"\xe2\x80\xa9" in capture:
                return None
        for raw, escaped in _ESCAPES:
            if raw in capture:
                capture = capture.replace(raw, escaped)
        records = _WHOLE_RECORD.findall(capture)
        # Each record starts a line and takes it whole: as many as lines, and every line is one.
        if len(records) != capture.count(b"\n"):
            return None
        attrs = self._attrs
        return b"".join([b'{"log":"%s\\n","stream":"%s",%s"time":"%s%sZ"}\n' % (text, stream, attrs, clock, fraction)
                         for clock, fraction, stream, text in records])

    def encode(self, rec: LogRecord) -> bytes:
        data = rec.data
        if data[-1:] == b"\n" and _PLAIN.fullmatch(data, 0, len(data) - 1):
            text = b'"' + data[:-1] + b'\\n"'
        elif _PLAIN.fullmatch(data):
            text = b'"' + data + b'"'
        else:
            text = _quoted(data)
        return (b'{"log":' + text + b',"stream":"' + _STREAMS[rec.stream] + b'",' + self._attrs
                + b'"time":"' + go_time(rec.ts).encode() + b'"}\n')

    @staticmethod
    def decode(data: bytes) -> tuple[list[LogRecord], int]:
        """The records of the complete lines in `data`, and how many bytes they took."""
        end = data.rfind(b"\n") + 1
        plain = _PLAIN_ENTRY.findall(data, 0, end)
        # Entries of text without escapes but a newline's, stamped in UTC (what this engine writes for most
        # output), every line one of them: read in one pass, without a JSON decoder or a timestamp parser.
        if len(plain) == data.count(b"\n", 0, end):
            return [LogRecord(_utc_ns(clock, fraction), _STREAM_NAMES[stream], text + b"\n" if newline else text,
                              not newline) for text, newline, stream, clock, fraction in plain], end
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
