"""SPDY/3.1 framing: frame types, their wire encoding, and the compressed name/value header blocks.

kubelet-era clients (kubectl, crictl) speak SPDY/3.1 to a CRI streaming server; no maintained Python
library exists, so this module holds the frame layer alone (no I/O). spdy_connection.py runs it over
a byte stream.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_CLEAR_SETTINGS = 0x01

# RST_STREAM status codes
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
UNSUPPORTED_VERSION = 4
CANCEL = 5
INTERNAL_ERROR = 6
FLOW_CONTROL_ERROR = 7
STREAM_IN_USE = 8
STREAM_ALREADY_CLOSED = 9
FRAME_TOO_LARGE = 11

# GOAWAY status codes
GOAWAY_OK = 0
GOAWAY_PROTOCOL_ERROR = 1
GOAWAY_INTERNAL_ERROR = 2

SETTINGS_MAX_CONCURRENT_STREAMS = 4
SETTINGS_INITIAL_WINDOW_SIZE = 7

DEFAULT_WINDOW = 64 * 1024
MAX_WINDOW = 0x7FFFFFFF
MAX_LENGTH = 0xFFFFFF
STREAM_ID_MASK = 0x7FFFFFFF


class SpdyProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3.1; the connection cannot continue."""


# The SPDY/3 header compression dictionary (spec section 2.6.10.1): common header names, each
# length-prefixed, then a run of common values. Both peers prime zlib with it.
_DICTIONARY_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status 200|OK version HTTP/1.1 url "
    "public set-cookie keep-alive origin"
).split()
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(
    struct.pack(">I", len(w)) + w.replace("|", " ").encode() for w in _DICTIONARY_WORDS
) + _DICTIONARY_TAIL.encode()

Headers = dict[str, list[str]]


class HeaderCompressor:
    """One zlib stream per direction per connection: every block we send continues the last one."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                   zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        return self._z.compress(encode_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    def __init__(self) -> None:
        self._z = zlib.decompressobj(15, DICTIONARY)

    def decompress(self, block: bytes) -> Headers:
        try:
            raw = self._z.decompress(block)
        except zlib.error as e:
            raise SpdyProtocolError(f"header block does not decompress: {e}") from e
        return decode_header_block(raw)


def encode_header_block(headers: Headers) -> bytes:
    """Names are lower-case on the wire; several values of one name travel NUL-separated."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        n = name.lower().encode()
        v = b"\0".join(x.encode() for x in values)
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def decode_header_block(raw: bytes) -> Headers:
    def take(pos: int) -> tuple[bytes, int]:
        if pos + 4 > len(raw):
            raise SpdyProtocolError("truncated header block")
        (n,) = struct.unpack_from(">I", raw, pos)
        if pos + 4 + n > len(raw):
            raise SpdyProtocolError("truncated header block")
        return raw[pos + 4:pos + 4 + n], pos + 4 + n

    if len(raw) < 4:
        raise SpdyProtocolError("truncated header block")
    (count,) = struct.unpack_from(">I", raw, 0)
    pos = 4
    headers: Headers = {}
    for _ in range(count):
        name, pos = take(pos)
        value, pos = take(pos)
        if not name:
            raise SpdyProtocolError("empty header name")
        key = name.decode("latin-1").lower()
        if key in headers:
            raise SpdyProtocolError(f"duplicate header name {key!r}")
        headers[key] = value.decode("latin-1").split("\0")
    return headers


@dataclass
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0
    associated_id: int = 0
    priority: int = 0
    slot: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)

    @property
    def unidirectional(self) -> bool:
        return bool(self.flags & FLAG_UNIDIRECTIONAL)


@dataclass
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class RstStream:
    stream_id: int
    status: int


@dataclass
class Settings:
    values: dict[int, int] = field(default_factory=dict)
    flags: int = 0


@dataclass
class Ping:
    ping_id: int


@dataclass
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


Frame = (DataFrame | SynStream | SynReply | HeadersFrame | RstStream | Settings | Ping | GoAway
         | WindowUpdate)


def _control(ftype: int, flags: int, body: bytes) -> bytes:
    if len(body) > MAX_LENGTH:
        raise ValueError("frame body too long")
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body


def encode_frame(frame: Frame, compressor: HeaderCompressor | None = None) -> bytes:
    """Wire bytes of a frame; frames with a header block need the connection's compressor."""
    if isinstance(frame, DataFrame):
        if len(frame.data) > MAX_LENGTH:
            raise ValueError("data frame too long")
        return struct.pack(">II", frame.stream_id & STREAM_ID_MASK,
                           (frame.flags << 24) | len(frame.data)) + frame.data
    if isinstance(frame, (SynStream, SynReply, HeadersFrame)):
        if compressor is None:
            raise ValueError("a header block needs the connection's compressor")
        block = compressor.compress(frame.headers)
        sid = struct.pack(">I", frame.stream_id & STREAM_ID_MASK)
        if isinstance(frame, SynStream):
            body = sid + struct.pack(">IBB", frame.associated_id & STREAM_ID_MASK,
                                     (frame.priority & 7) << 5, frame.slot) + block
            return _control(SYN_STREAM, frame.flags, body)
        return _control(SYN_REPLY if isinstance(frame, SynReply) else HEADERS, frame.flags, sid + block)
    if isinstance(frame, RstStream):
        return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id & STREAM_ID_MASK, frame.status))
    if isinstance(frame, Settings):
        body = struct.pack(">I", len(frame.values)) + b"".join(
            struct.pack(">II", key & 0xFFFFFF, value) for key, value in frame.values.items())
        return _control(SETTINGS, frame.flags, body)
    if isinstance(frame, Ping):
        return _control(PING, 0, struct.pack(">I", frame.ping_id))
    if isinstance(frame, GoAway):
        return _control(GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id & STREAM_ID_MASK,
                                               frame.status))
    if isinstance(frame, WindowUpdate):
        return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id & STREAM_ID_MASK,
                                                      frame.delta & MAX_WINDOW))
    raise TypeError(f"not a SPDY frame: {frame!r}")


def parse_head(head: bytes) -> tuple[bool, int, int, int]:
    """(is_control, type-or-stream-id, flags, length) of an 8-byte frame head."""
    word, flags_length = struct.unpack(">II", head)
    flags, length = flags_length >> 24, flags_length & MAX_LENGTH
    if word & 0x80000000:
        version = (word >> 16) & 0x7FFF
        if version != VERSION:
            raise SpdyProtocolError(f"unsupported SPDY version {version}")
        return True, word & 0xFFFF, flags, length
    return False, word & STREAM_ID_MASK, flags, length


def decode_frame(head: bytes, body: bytes, decompressor: HeaderDecompressor) -> Frame | None:
    """The frame of a head and its body; None for control types SPDY/3.1 says to ignore."""
    control, kind, flags, length = parse_head(head)
    if len(body) != length:
        raise SpdyProtocolError("frame body length does not match its head")
    if not control:
        return DataFrame(kind, body, flags)

    def need(n: int) -> None:
        if len(body) < n:
            raise SpdyProtocolError(f"control frame type {kind} too short")

    if kind == SYN_STREAM:
        need(10)
        sid, assoc, prio, slot = struct.unpack_from(">IIBB", body)
        return SynStream(sid & STREAM_ID_MASK, decompressor.decompress(body[10:]), flags,
                         assoc & STREAM_ID_MASK, prio >> 5, slot)
    if kind in (SYN_REPLY, HEADERS):
        need(4)
        (sid,) = struct.unpack_from(">I", body)
        cls = SynReply if kind == SYN_REPLY else HeadersFrame
        return cls(sid & STREAM_ID_MASK, decompressor.decompress(body[4:]), flags)
    if kind == RST_STREAM:
        need(8)
        sid, status = struct.unpack_from(">II", body)
        return RstStream(sid & STREAM_ID_MASK, status)
    if kind == SETTINGS:
        need(4)
        (count,) = struct.unpack_from(">I", body)
        need(4 + 8 * count)
        values = {}
        for i in range(count):
            key, value = struct.unpack_from(">II", body, 4 + 8 * i)
            values[key & 0xFFFFFF] = value
        return Settings(values, flags)
    if kind == PING:
        need(4)
        return Ping(struct.unpack_from(">I", body)[0])
    if kind == GOAWAY:
        need(4)
        last = struct.unpack_from(">I", body)[0] & STREAM_ID_MASK
        status = struct.unpack_from(">I", body, 4)[0] if len(body) >= 8 else GOAWAY_OK
        return GoAway(last, status)
    if kind == WINDOW_UPDATE:
        need(8)
        sid, delta = struct.unpack_from(">II", body)
        return WindowUpdate(sid & STREAM_ID_MASK, delta & MAX_WINDOW)
    return None
