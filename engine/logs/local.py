"""local, dockerd's compact log format: each entry a protobuf LogEntry (source = 1, time_nano = 2, line = 3,
partial = 4) framed by its length, big-endian uint32, before and after. The trailing length lets a reader walk
back from the end, which is how `--tail` and `--since` find their start without reading the file.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

from runtime.client.logs import LogRecord

NAME = "local"
_LEN = struct.Struct(">I")
_STREAMS = {"stdout": b"stdout", "stderr": b"stderr"}


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # protobuf's int64: two's complement
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buf: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


class Local:
    entry_path = "local-logs/container.log"

    @staticmethod
    def encode(rec: LogRecord) -> bytes:
        line = rec.data if rec.partial else rec.data.removesuffix(b"\n")
        source = _STREAMS[rec.stream]
        body = (b"\x0a" + _varint(len(source)) + source + b"\x10" + _varint(rec.ts)
                + b"\x1a" + _varint(len(line)) + line + (b"\x20\x01" if rec.partial else b""))
        size = _LEN.pack(len(body))
        return size + body + size

    @staticmethod
    def whole_lines(capture: bytes) -> None:
        return None  # every entry carries its time as a varint: made record by record

    @staticmethod
    def decode(data: bytes) -> tuple[list[LogRecord], int]:
        out, at = [], 0
        while at + 4 <= len(data):
            (size,) = _LEN.unpack_from(data, at)
            end = at + 4 + size + 4
            if end > len(data):
                break
            rec = _record(data[at + 4:at + 4 + size])
            if rec is not None:
                out.append(rec)
            at = end
        return out, at

    @staticmethod
    def since_offset(f: BinaryIO, size: int, since: int) -> int:
        pos = size
        while pos > 0:
            start, rec = _entry_before(f, pos)
            if rec is None or rec.ts < since:
                return pos
            pos = start
        return 0

    @staticmethod
    def tail_offset(f: BinaryIO, size: int, n: int) -> int:
        pos = size
        for _ in range(n):
            if pos == 0:
                break
            pos, _rec = _entry_before(f, pos)
        return pos


def _entry_before(f: BinaryIO, end: int) -> tuple[int, LogRecord | None]:
    """The entry ending at `end`: where it starts, and what it holds (None if the framing is broken)."""
    if end < 8:
        return 0, None
    f.seek(end - 4)
    (size,) = _LEN.unpack(f.read(4))
    start = end - 8 - size
    if start < 0:
        return 0, None
    f.seek(start + 4)
    return start, _record(f.read(size))


def _record(body: bytes) -> LogRecord | None:
    source, ts, line, partial = b"", 0, b"", False
    try:
        at = 0
        while at < len(body):
            key, at = _read_varint(body, at)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, at = _read_varint(body, at)
                if field == 2:
                    ts = value - (1 << 64) if value >= 1 << 63 else value
                elif field == 4:
                    partial = bool(value)
            elif wire == 2:
                length, at = _read_varint(body, at)
                chunk, at = body[at:at + length], at + length
                if field == 1:
                    source = chunk
                elif field == 3:
                    line = chunk
            else:
                return None
    except IndexError:
        return None
    stream = source.decode("ascii", "replace")
    if stream not in _STREAMS:
        return None
    return LogRecord(ts=ts, stream=stream, data=line if partial else line + b"\n", partial=partial)


class Cache(Local):
    """dockerd's dual logging: the local format, kept beside a driver `docker logs` cannot read."""

    entry_path = "container-cached.log"
