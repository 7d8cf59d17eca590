"""The fluentd log driver: each line of a container's output sent as an event of Fluentd's forward protocol,
as dockerd 20.10 sends it (through fluent-logger-golang).

An event is the msgpack array [tag, time, record, option]: time in whole seconds, or an EventTime with
fluentd-sub-second-precision; the record maps container_id, container_name ("/" and the name), source
(stdout or stderr) and log (the line, without its newline) and the labels and env vars the options name, and,
for a line sent in pieces, partial_message, partial_id, partial_ordinal and partial_last; option is an empty
map, or, with fluentd-request-ack, {"chunk": ID} that the server answers with {"ack": ID}.
"""
from __future__ import annotations

import base64
import re
import secrets
import socket
import struct
from urllib.parse import urlsplit

from engine.api.timestamps import duration_ns
from engine.errors import InvalidArgument
from engine.logs import attrs, msgpack, partial, transport
from engine.logs.forward import Policy
from runtime.client.logs import LogRecord

NAME = "fluentd"
OPTIONS = {"fluentd-address", "fluentd-async", "fluentd-async-connect", "fluentd-buffer-limit", "fluentd-retry-wait",
           "fluentd-max-retries", "fluentd-sub-second-precision", "fluentd-request-ack", "tag", "labels",
           "labels-regex", "env", "env-regex"}
_BOOLS = ("fluentd-async", "fluentd-async-connect", "fluentd-sub-second-precision", "fluentd-request-ack")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 24224
_DEFAULT_BUFFER = 1024 * 1024  # events
_DEFAULT_WAIT = 1.0
_MAX_WAIT = 60.0
_RAM = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_TRUE, _FALSE = {"1", "t", "T", "true", "TRUE", "True"}, {"0", "f", "F", "false", "FALSE", "False"}
_TRANSPORTS = ("tcp://", "udp://", "unix://", "unixgram://")


def _bool(value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgument(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _flag(options: dict[str, str], key: str) -> bool:
    return _bool(options[key]) if options.get(key) else False


def _split_host_port(address: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort: None for a missing port, InvalidArgument (its words) for a bad address."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise InvalidArgument(f"address {address}: missing ']' in address")
        if end + 1 == len(address) or address[end + 1] != ":":
            return None
        return address[1:end], address[end + 2:]
    host, sep, port = address.rpartition(":")
    if not sep:
        return None
    if ":" in host:
        raise InvalidArgument(f"address {address}: too many colons in address")
    return host, port


def location(value: str) -> tuple[str, str, int, str]:
    """fluentd-address as network, host, port and socket path, parsed as dockerd parses it. An address without
    a port is dockerd's default port on its default host, whatever host it names: Go's SplitHostPort gives no
    host with its error, and fluent-logger then takes its default."""
    if not value:
        return "tcp", DEFAULT_HOST, DEFAULT_PORT, ""
    network, address = "tcp", value
    try:
        if value.startswith(_TRANSPORTS):
            url = urlsplit(value)
            try:
                url.port  # noqa: B018 - parsing the port is what refuses a bad one
            except ValueError:
                port = url.netloc.rpartition(":")[2]
                raise InvalidArgument(f'parse "{value}": invalid port ":{port}" after host') from None
            if url.scheme in ("unix", "unixgram"):
                return url.scheme, "", 0, url.path
            network, address = url.scheme, url.netloc
        parts = _split_host_port(address)
        if parts is None:
            return network, DEFAULT_HOST, DEFAULT_PORT, ""
        host, port = parts
        if not re.fullmatch(r"[+-]?\d+", port):
            raise InvalidArgument(f'strconv.Atoi: parsing "{port}": invalid syntax')
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid fluentd-address {value}: {e.message}") from None
    return network, host or DEFAULT_HOST, int(port), ""


def _ram(value: str) -> int:
    """go-units' RAMInBytes: binary multiples."""
    m = _RAM.match(value)
    if m is None:
        raise InvalidArgument(f"invalid size: '{value}'")
    return int(float(m.group(1)) * 1024 ** " kmgtp".index((m.group(2) or " ").lower()))


def _wait(value: str) -> float:
    ns = duration_ns(value)
    if ns is None:
        if re.fullmatch(r"[+-]?\d+(\.\d*)?", value) and value.strip("+-0.") != "":
            raise InvalidArgument(f'time: missing unit in duration "{value}"')
        if value.strip("+-") != "0":
            raise InvalidArgument(f'time: invalid duration "{value}"')
        ns = 0
    return ns / 1e9


def _retries(value: str) -> int:
    if not value.isdigit() or int(value) >= 1 << 64:
        raise InvalidArgument(f'strconv.ParseUint: parsing "{value}": invalid syntax')
    return int(value)


def check(options: dict[str, str]) -> None:
    """What dockerd refuses at create, in its words and order."""
    location(options.get("fluentd-address", ""))
    policy(options)
    if options.get("fluentd-async") and options.get("fluentd-async-connect"):
        raise InvalidArgument("conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect")
    for key in _BOOLS:
        _flag(options, key)


def policy(options: dict[str, str]) -> Policy:
    """How lines wait for the server: fluentd-buffer-limit events at most; fluentd-retry-wait before the first
    retry, half as long again each time, up to a minute; a line given up after fluentd-max-retries tries."""
    limit = _ram(options["fluentd-buffer-limit"]) if options.get("fluentd-buffer-limit") else _DEFAULT_BUFFER
    wait = _wait(options["fluentd-retry-wait"]) if options.get("fluentd-retry-wait") else _DEFAULT_WAIT
    tries = _retries(options["fluentd-max-retries"]) if options.get("fluentd-max-retries") else None
    # Every line gets one try, even with fluentd-max-retries=0 (dockerd's would send nothing at all).
    return Policy(retry=min(wait, _MAX_WAIT), factor=1.5, max_retry=_MAX_WAIT,
                  tries=None if tries is None else max(tries, 1), max_lines=max(limit, 1), empty=True)


def connects_first(options: dict[str, str]) -> bool:
    """Whether a start connects before the container runs and fails without the server (dockerd's default), or
    leaves connecting to the background (fluentd-async, or the older fluentd-async-connect)."""
    return not (_flag(options, "fluentd-async") or _flag(options, "fluentd-async-connect"))


def chunk_id(seconds: int) -> str:
    """fluent-logger's chunk ID: the time and 8 random bytes, little-endian, in base64."""
    return base64.b64encode(struct.pack("<q", seconds) + secrets.token_bytes(8)).decode()


def event(tag: str, rec: LogRecord, record: dict[str, msgpack.Value], sub_second: bool,
          chunk: str | None = None) -> bytes:
    seconds, ns = divmod(rec.ts, 10**9)
    when: msgpack.Value = msgpack.EventTime(seconds, ns) if sub_second else seconds
    option: dict[str, msgpack.Value] = {"chunk": chunk} if chunk is not None else {}
    return msgpack.pack([tag, when, record, option])


def record(base: dict[str, str], stream: str, piece: partial.Piece) -> dict[str, msgpack.Value]:
    out: dict[str, msgpack.Value] = {"container_id": base["container_id"], "container_name": base["container_name"],
                                     "source": stream, "log": piece.data}
    out.update((k, v) for k, v in base.items() if k not in ("container_id", "container_name"))
    if piece.meta is not None:
        out.update(partial_message="true", partial_id=piece.meta.id, partial_ordinal=str(piece.meta.ordinal),
                   partial_last="true" if piece.meta.last else "false")
    return out


class Fluentd:
    """Sends a container's lines to one Fluentd server. Synchronous: used from its forwarding thread."""

    def __init__(self, options: dict[str, str], c: attrs.Tagged) -> None:
        self._network, host, port, path = location(options.get("fluentd-address", ""))
        unix = self._network in ("unix", "unixgram")
        self._address = path if unix else f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._tag = attrs.render_tag(options.get("tag", "{{.ID}}"), c)
        self._sub_second = _flag(options, "fluentd-sub-second-precision")
        self._ack = _flag(options, "fluentd-request-ack")
        self._base = {"container_id": c.id, "container_name": "/" + c.name, **attrs.extra(c, options)}
        self._pieces = partial.Pieces()
        self._sock: socket.socket | None = None

    def connect(self) -> None:
        self.close()
        if self._network not in ("tcp", "unix"):
            raise transport.DialError(f"unknown network {self._network}")
        if not self._address:
            raise transport.DialError("dial unix: missing address")
        self._sock = transport.connect(self._network, self._address)

    def send(self, rec: LogRecord) -> None:
        for piece in self._pieces.of(rec):
            chunk = chunk_id(rec.ts // 10**9) if self._ack else None
            data = event(self._tag, rec, record(self._base, rec.stream, piece), self._sub_second, chunk)
            try:
                if self._sock is None:
                    self.connect()
                assert self._sock is not None
                self._sock.sendall(data)
                if chunk is not None:
                    self._await_ack(chunk)
            except OSError:
                self.close()
                raise

    def _await_ack(self, chunk: str) -> None:
        assert self._sock is not None
        got = b""
        while True:
            more = self._sock.recv(4096)
            if not more:
                raise ConnectionResetError(f"fluentd closed the connection before its ack of chunk {chunk}")
            got += more
            try:
                answer, _ = msgpack.unpack_strings(got)
            except msgpack.Incomplete:
                continue
            except ValueError as e:
                raise ConnectionError(f"fluentd answered a chunk with no ack: {e}") from None
            if not isinstance(answer, dict) or answer.get("ack") != chunk:
                raise ConnectionError(f"fluentd answered chunk {chunk} with {answer!r}")
            return

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
