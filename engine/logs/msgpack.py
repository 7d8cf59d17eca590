"""The few MessagePack encodings Fluentd's forward protocol needs, in the smallest form of each as Go's msgp
library writes them, and a decoder for the server's answers (a map of strings).

Encoded: strings (and bytes, as a string: Go's strings hold any bytes), ints (signed forms past 127, as msgp
writes an int64), arrays, maps and Fluentd's EventTime (ext type 0).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

from engine.errors import InvalidArgument


@dataclass(frozen=True)
class EventTime:
    """Fluentd's EventTime: seconds and nanoseconds, sent as ext type 0."""
    seconds: int
    nanoseconds: int


Value = Union[str, bytes, int, EventTime, list["Value"], dict[str, "Value"]]

# The one-byte form's first byte and largest size, then the codes of the 8-, 16- and 32-bit size forms.
_STR = (0xA0, 31, (0xD9, 0xDA, 0xDB))
_ARRAY = (0x90, 15, (None, 0xDC, 0xDD))
_MAP = (0x80, 15, (None, 0xDE, 0xDF))
_SIZES = (">B", ">H", ">I")


def _head(n: int, kind: tuple[int, int, tuple[int | None, ...]]) -> bytes:
    fix, fix_max, codes = kind
    if n <= fix_max:
        return bytes((fix | n,))
    for code, fmt in zip(codes, _SIZES):
        if code is not None and n < 1 << (8 * struct.calcsize(fmt)):
            return bytes((code,)) + struct.pack(fmt, n)
    raise InvalidArgument(f"msgpack: a size of {n} is too large")


def _int(n: int) -> bytes:
    if 0 <= n <= 0x7F:
        return bytes((n,))
    if -32 <= n < 0:
        return struct.pack(">b", n)
    for code, fmt in ((0xD0, ">b"), (0xD1, ">h"), (0xD2, ">i"), (0xD3, ">q")):
        bits = 8 * struct.calcsize(fmt)
        if -(1 << (bits - 1)) <= n < 1 << (bits - 1):
            return bytes((code,)) + struct.pack(fmt, n)
    raise InvalidArgument(f"msgpack: {n} does not fit in 64 bits")


def pack(value: Value) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return _head(len(value), _STR) + value
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, EventTime):
        return b"\xd7\x00" + struct.pack(">II", value.seconds, value.nanoseconds)
    if isinstance(value, list):
        return _head(len(value), _ARRAY) + b"".join(pack(v) for v in value)
    return _head(len(value), _MAP) + b"".join(pack(k) + pack(v) for k, v in value.items())


class Incomplete(ValueError):
    """More bytes are needed to decode a value."""


def _take(data: bytes, at: int, n: int) -> tuple[bytes, int]:
    if at + n > len(data):
        raise Incomplete
    return data[at:at + n], at + n


def unpack_strings(data: bytes, at: int = 0) -> tuple[str | dict[str, str], int]:
    """A string, or a map of strings to strings, at `at` in `data`, and where it ends; Incomplete if `data`
    stops short of its end, ValueError if it is something else."""
    code, at = _take(data, at, 1)
    c = code[0]
    if 0xA0 <= c <= 0xBF or c in (0xD9, 0xDA, 0xDB):
        if c <= 0xBF:
            n = c & 0x1F
        else:
            raw, at = _take(data, at, 1 << (c - 0xD9))
            n = int.from_bytes(raw, "big")
        text, at = _take(data, at, n)
        return text.decode("utf-8", "replace"), at
    if 0x80 <= c <= 0x8F or c in (0xDE, 0xDF):
        if c <= 0x8F:
            n = c & 0x0F
        else:
            raw, at = _take(data, at, 2 if c == 0xDE else 4)
            n = int.from_bytes(raw, "big")
        out: dict[str, str] = {}
        for _ in range(n):
            key, at = unpack_strings(data, at)
            value, at = unpack_strings(data, at)
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError("msgpack: a map of maps")
            out[key] = value
        return out, at
    raise ValueError(f"msgpack: unexpected type 0x{c:02x}")
