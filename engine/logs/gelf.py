"""The gelf log driver: each line of a container's output sent as a GELF 1.1 message, as dockerd 20.10 sends it.

The message is JSON as Go writes it (HTML-safe escapes, the extra fields after the standard ones, sorted):
version, host, short_message, timestamp (seconds, to the millisecond), level (6 stdout, 3 stderr), then
_command, _container_id, _container_name, _created, _image_id, _image_name, _tag and the labels and env vars
the options name, each with a leading underscore. Over UDP it is compressed (gzip at level 1 by default) and
cut into chunks past 1420 bytes; over TCP it goes as it is, ended by a NUL byte.
"""
from __future__ import annotations

import logging
import os
import socket
import struct
import time
import zlib
from typing import Any, Protocol

from engine.errors import InvalidArgument
from engine.logs import attrs, transport
from engine.logs.jsonfile import go_time
from runtime.client.logs import LogRecord

log = logging.getLogger("engine.logs")
NAME = "gelf"
OPTIONS = {"gelf-address", "gelf-compression-level", "gelf-compression-type", "gelf-tcp-max-reconnect",
           "gelf-tcp-reconnect-delay", "tag", "labels", "labels-regex", "env", "env-regex"}
_UDP_ONLY = ("gelf-compression-level", "gelf-compression-type")
_TCP_ONLY = ("gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay")
_INFO, _ERR = 6, 3
CHUNK = 1420  # the largest datagram sent whole; bigger messages go in chunks of this size
_CHUNK_HEAD = 12  # magic (2), message ID (8), sequence number and count (1 each)
_MAX_CHUNKS = 128
# Go's encoding/json escapes these besides quote, backslash and control characters.
_ESCAPES = {**{c: f"\\u{c:04x}" for c in range(0x20)}, ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
            ord('"'): '\\"', ord("\\"): "\\\\", ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
            0x2028: "\\u2028", 0x2029: "\\u2029"}


class Described(attrs.Tagged, Protocol):
    created: float


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f'"{key}" must be a positive integer') from None


def check(options: dict[str, str]) -> None:
    """What dockerd refuses at create."""
    for key, value in options.items():
        if key == "gelf-compression-level":
            if not value.lstrip("-").isdigit() or not -1 <= int(value) <= 9:
                raise InvalidArgument(f'unknown value "{value}" for log opt "{key}" for gelf log driver')
        elif key == "gelf-compression-type" and value not in ("gzip", "zlib", "none"):
            raise InvalidArgument(f'unknown value "{value}" for log opt "{key}" for gelf log driver')
    network, _ = address(options.get("gelf-address", ""))
    for key in _UDP_ONLY if network == "tcp" else _TCP_ONLY:
        if key in options:
            if network == "tcp":
                raise InvalidArgument("compression is only supported on UDP")
            raise InvalidArgument(f'"{key}" is only valid for TCP')
    for key in _TCP_ONLY:
        if key in options and _int(key, options[key]) < 0:
            raise InvalidArgument(f'"{key}" must be a positive integer')


def address(value: str) -> tuple[str, str]:
    if not value:
        raise InvalidArgument("gelf-address is a required parameter")
    url = transport.split(value, "gelf-address")
    if url.scheme not in ("udp", "tcp"):
        raise InvalidArgument("gelf: endpoint needs to be TCP or UDP")
    if transport.host_port(url.netloc) is None:
        raise InvalidArgument("gelf: please provide gelf-address as proto://host:port")
    return url.scheme, url.netloc


def go_string(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def go_json(value: Any) -> str:
    """Go's json.Marshal of strings, numbers and maps of them (keys sorted)."""
    if isinstance(value, str):
        return go_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_string(k)}:{go_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, float):
        text = repr(value)
        return text.removesuffix(".0")
    return str(value)


def extra_fields(c: Described, options: dict[str, str]) -> str:
    """The message's extra fields, as JSON members: the same for every line of the container."""
    fields: dict[str, str] = {
        "_container_id": c.id, "_container_name": c.name, "_image_id": c.image_id, "_image_name": c.image,
        "_command": " ".join([c.path, *c.args]), "_tag": attrs.render_tag(options.get("tag", "{{.ID}}"), c),
        "_created": go_time(int(round(c.created * 10**9))),
    }
    for key, value in attrs.extra(c, options).items():
        fields[key if key.startswith("_") else "_" + key] = value
    return go_json(fields)[1:-1]


def message(host: str, rec: LogRecord, extra: str) -> bytes:
    line = rec.data.removesuffix(b"\n").decode("utf-8", "replace")
    level = _ERR if rec.stream == "stderr" else _INFO
    head = (f'{{"version":"1.1","host":{go_string(host)},"short_message":{go_string(line)},'
            f'"timestamp":{go_json(rec.ts // 10**6 / 1000)},"level":{level}')
    return (head + ("," + extra if extra else "") + "}").encode()


def chunks(data: bytes) -> list[bytes]:
    """A UDP message as its datagrams: whole, or in numbered chunks sharing a random ID; none for a message
    past GELF's 128 chunks, which no server would put together."""
    if len(data) <= CHUNK:
        return [data]
    size = CHUNK - _CHUNK_HEAD
    count = -(-len(data) // size)
    if count > _MAX_CHUNKS:
        return []
    ident = os.urandom(8)
    return [b"\x1e\x0f" + ident + bytes((n, count)) + data[n * size:(n + 1) * size] for n in range(count)]


def compress(data: bytes, kind: str, level: int) -> bytes:
    if kind == "none":
        return data
    if kind == "zlib":
        return zlib.compress(data, level)
    # The header as Go's gzip writes it: no time, no name, "unknown" OS, the speed/size flag of the level.
    xfl = {9: 2, 1: 4}.get(level, 0)
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes((xfl, 0xFF)) + body
            + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))


class Gelf:
    """Sends a container's lines to one GELF server. Synchronous: used from its forwarding thread."""

    def __init__(self, options: dict[str, str], c: Described) -> None:
        self._network, self._address = address(options.get("gelf-address", ""))
        self._kind = options.get("gelf-compression-type", "gzip")
        self._level = int(options.get("gelf-compression-level", "1"))
        self._reconnects = int(options.get("gelf-tcp-max-reconnect", "3"))
        self._delay = int(options.get("gelf-tcp-reconnect-delay", "1"))
        self._host = socket.gethostname()
        self._extra = extra_fields(c, options)
        self._cid = c.id
        self._sock: socket.socket | None = None

    def connect(self) -> None:
        self.close()
        try:
            self._sock = transport.connect(self._network, self._address)
        except transport.DialError as e:
            raise transport.DialError(f"gelf: cannot connect to GELF endpoint: {self._address} {e}") from None

    def send(self, rec: LogRecord) -> None:
        data = message(self._host, rec, self._extra)
        if self._network == "udp":
            if self._sock is None:
                self.connect()
            assert self._sock is not None
            datagrams = chunks(compress(data, self._kind, self._level))
            if not datagrams:
                log.warning("container=%s: a line too large for GELF over UDP was not sent", self._cid)
            for datagram in datagrams:
                self._sock.send(datagram)
            return
        # TCP: reconnect up to gelf-tcp-max-reconnect times, gelf-tcp-reconnect-delay seconds apart.
        for attempt in range(self._reconnects + 1):
            try:
                if self._sock is None:
                    self.connect()
                assert self._sock is not None
                self._sock.sendall(data + b"\x00")
                return
            except OSError:
                self.close()
                if attempt == self._reconnects:
                    raise
                time.sleep(self._delay)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
