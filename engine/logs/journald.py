"""The journald log driver: each line of a container's output sent to the systemd journal over its native
protocol, with the fields dockerd 20.10's journald driver gives it.

An entry is one datagram of fields, `KEY=value` lines, or for a value holding a newline the key, a newline, the
value's length (64-bit little-endian), the value and a newline: PRIORITY (6 stdout, 3 stderr), MESSAGE (the
line without its newline), CONTAINER_ID (12 characters), CONTAINER_ID_FULL, CONTAINER_NAME, CONTAINER_TAG and
SYSLOG_IDENTIFIER (the tag), IMAGE_NAME, the labels and env vars the options name (keys upper-cased, other
characters than letters and digits as `_`, leading `_` dropped, as the journal wants its keys), and
CONTAINER_PARTIAL_MESSAGE=true on a piece of a line that is not its last. An entry too big for a datagram goes
in a sealed memfd passed along the socket, as the journal takes those.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct

from engine.logs import attrs, partial, transport
from runtime.client.logs import LogRecord

NAME = "journald"
OPTIONS = {"tag", "labels", "labels-regex", "env", "env-regex"}
SOCKET = "/run/systemd/journal/socket"
_INFO, _ERR = 6, 3
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL


def sanitize(key: str) -> str:
    out: list[str] = []
    for ch in key:
        if "a" <= ch <= "z":
            ch = ch.upper()
        elif not ("A" <= ch <= "Z" or "0" <= ch <= "9"):
            ch = "_"
        if out or ch != "_":
            out.append(ch)
    return "".join(out)


def fields(c: attrs.Tagged, options: dict[str, str]) -> dict[str, str]:
    """The fields of every entry of the container's, after PRIORITY and MESSAGE."""
    tag = attrs.render_tag(options.get("tag", "{{.ID}}"), c)
    out = {"CONTAINER_ID": c.id[:12], "CONTAINER_ID_FULL": c.id, "CONTAINER_NAME": c.name, "CONTAINER_TAG": tag,
           "IMAGE_NAME": c.image, "SYSLOG_IDENTIFIER": tag}
    out.update((sanitize(k), v) for k, v in attrs.extra(c, options).items())
    return out


def _field(key: str, value: bytes) -> bytes:
    if b"\n" in value:
        return key.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return key.encode() + b"=" + value + b"\n"


def entry(stream: str, piece: partial.Piece, extra: dict[str, str]) -> bytes:
    out = [_field("PRIORITY", b"%d" % (_ERR if stream == "stderr" else _INFO)), _field("MESSAGE", piece.data)]
    out += [_field(k, v.encode()) for k, v in extra.items()]
    if piece.meta is not None and not piece.meta.last:
        out.append(_field("CONTAINER_PARTIAL_MESSAGE", b"true"))
    return b"".join(out)


class Journald:
    """Sends a container's lines to the journal listening at `path`. Synchronous: used from its forwarding
    thread."""

    def __init__(self, path: str, c: attrs.Tagged, options: dict[str, str]) -> None:
        self._path = path
        self._fields = fields(c, options)
        self._pieces = partial.Pieces()
        self._sock: socket.socket | None = None

    def connect(self) -> None:
        """Reach the journal; a start without it fails as dockerd's does."""
        self.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise transport.DialError("journald is not enabled on this host") from None
        self._sock = sock

    def send(self, rec: LogRecord) -> None:
        for piece in self._pieces.of(rec):
            data = entry(rec.stream, piece, self._fields)
            try:
                if self._sock is None:
                    self.connect()
                assert self._sock is not None
                try:
                    self._sock.send(data)
                except OSError as e:
                    if e.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                        raise
                    self._send_large(data)
            except OSError:
                self.close()
                raise

    def _send_large(self, data: bytes) -> None:
        assert self._sock is not None
        fd = os.memfd_create("journal-entry", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
            socket.send_fds(self._sock, [b""], [fd])
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
