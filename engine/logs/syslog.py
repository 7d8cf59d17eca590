"""The syslog log driver: each line of a container's output sent as a syslog message, framed as dockerd 20.10
frames it (its syslog library's formats, one message a line, a newline at its end).

Formats, for a line at priority P (facility * 8 + 6 for stdout, + 3 for stderr) from a process with PID:
    ""            <P>Mmm dd hh:mm:ss TAG[PID]: LINE
    rfc3164       <P>Mmm dd hh:mm:ss HOST TAG[PID]: LINE
    rfc5424       <P>1 RFC3339-TIME HOST TAG PID TAG - LINE
    rfc5424micro  the same with microseconds in the time
Over tcp+tls, rfc5424 messages go with their length in front (RFC 5425). The time is the line's own, in the
host's zone, and PID is the engine's, as dockerd puts its own.
"""
from __future__ import annotations

import os
import socket
import ssl
import time

from engine.errors import Internal, InvalidArgument
from engine.logs import transport
from runtime.client.logs import LogRecord

NAME = "syslog"
OPTIONS = {"syslog-address", "syslog-facility", "syslog-format", "syslog-tls-ca-cert", "syslog-tls-cert",
           "syslog-tls-key", "syslog-tls-skip-verify", "tag", "labels", "labels-regex", "env", "env-regex"}
_TLS_OPTIONS = ("syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key", "syslog-tls-skip-verify")
_FACILITIES = {name: n for n, name in enumerate((
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp"))}
_FACILITIES.update({f"local{n}": 16 + n for n in range(8)})
_FORMATS = ("", "rfc3164", "rfc5424", "rfc5424micro")
_INFO, _ERR = 6, 3
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Where the host's own syslog listens when no address is given.
LOCAL_SOCKET = "/dev/log"


def check(options: dict[str, str]) -> None:
    """What dockerd refuses at create; and TLS options without a tcp+tls address, which it would ignore."""
    network, _ = address(options.get("syslog-address", ""))
    facility(options.get("syslog-facility", ""))
    if options.get("syslog-format", "") not in _FORMATS:
        raise InvalidArgument("Invalid syslog format")
    if network != "tcp+tls":
        for key in _TLS_OPTIONS:
            if key in options:
                raise InvalidArgument(f'"{key}" is only valid with a tcp+tls:// syslog-address')


def address(value: str) -> tuple[str, str]:
    """The network and address to send to; ("", "") for the host's own syslog."""
    if not value:
        return "", ""
    url = transport.split(value, "syslog-address")
    if url.scheme in ("unix", "unixgram"):
        try:
            os.stat(url.path)
        except OSError as e:
            raise InvalidArgument(f"stat {url.path}: {(e.strerror or str(e)).lower()}") from None
        return url.scheme, url.path
    return url.scheme, url.netloc if transport.host_port(url.netloc) is not None else f"{url.netloc}:514"


def facility(value: str) -> int:
    if not value:
        return _FACILITIES["daemon"]
    if value in _FACILITIES:
        return _FACILITIES[value]
    if value.isdigit() and 0 <= int(value) <= 23:
        return int(value)
    raise InvalidArgument("invalid syslog facility")


def _stamp(ts: int) -> str:
    """Go's time.Stamp ("Jan _2 15:04:05") in the host's zone."""
    t = time.localtime(ts // 10**9)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def _rfc3339(ts: int, micro: bool) -> str:
    seconds, ns = divmod(ts, 10**9)
    t = time.localtime(seconds)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", t)
    if micro and (frac := f"{ns // 1000:06d}".rstrip("0")):
        out += "." + frac
    offset = t.tm_gmtoff
    if offset == 0:
        return out + "Z"
    sign, offset = ("-", -offset) if offset < 0 else ("+", offset)
    return out + f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"


def message(fmt: str, priority: int, ts: int, host: str, tag: str, pid: int, line: bytes, tls: bool = False) -> bytes:
    """One line as the syslog message dockerd sends for it."""
    if fmt in ("rfc5424", "rfc5424micro"):
        head = f"<{priority}>1 {_rfc3339(ts, fmt == 'rfc5424micro')} {host} {tag} {pid} {tag} - "
    elif fmt == "rfc3164":
        head = f"<{priority}>{_stamp(ts)} {host} {tag}[{pid}]: "
    else:
        head = f"<{priority}>{_stamp(ts)} {tag}[{pid}]: "
    out = head.encode() + line + (b"" if line.endswith(b"\n") else b"\n")
    if tls and fmt in ("rfc5424", "rfc5424micro"):
        return b"%d " % len(out) + out
    return out


def tls_context(options: dict[str, str]) -> ssl.SSLContext:
    """The client side of tcp+tls. Like dockerd, syslog-tls-skip-verify skips verification whatever its value."""
    ctx = ssl.create_default_context()
    try:
        if "syslog-tls-ca-cert" in options:
            ctx.load_verify_locations(cafile=options["syslog-tls-ca-cert"])
        if "syslog-tls-cert" in options or "syslog-tls-key" in options:
            ctx.load_cert_chain(options.get("syslog-tls-cert", ""), options.get("syslog-tls-key") or None)
    except (OSError, ssl.SSLError) as e:
        raise Internal(f"failed to initialize logging driver: could not load TLS files: {e}") from None
    if "syslog-tls-skip-verify" in options:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Syslog:
    """Sends a container's lines to one syslog server. Synchronous: used from its forwarding thread."""

    def __init__(self, options: dict[str, str], tag: str) -> None:
        self._network, self._address = address(options.get("syslog-address", ""))
        self._facility = facility(options.get("syslog-facility", ""))
        self._format = options.get("syslog-format", "")
        self._tls = tls_context(options) if self._network == "tcp+tls" else None
        self._tag = tag
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._sock: socket.socket | None = None

    def connect(self) -> None:
        """Open the connection, raising transport.DialError in Go's words."""
        self.close()
        if self._network:
            self._sock = transport.connect(self._network, self._address, self._tls)
            return
        last: OSError | None = None
        for network in ("unixgram", "unix"):
            try:
                self._sock = transport.connect(network, LOCAL_SOCKET)
                return
            except OSError as e:
                last = e
        raise transport.DialError(f"Unix syslog delivery error ({last})")

    def send(self, rec: LogRecord) -> None:
        """Send one line; on a failed write, reconnect once and write again, as dockerd's syslog library does."""
        severity = _ERR if rec.stream == "stderr" else _INFO
        data = message(self._format, self._facility * 8 + severity, rec.ts, self._host, self._tag, self._pid,
                       rec.data.removesuffix(b"\n"), tls=self._network == "tcp+tls")
        for attempt in (1, 2):
            try:
                if self._sock is None:
                    self.connect()
                assert self._sock is not None
                self._sock.sendall(data)
                return
            except OSError:
                self.close()
                if attempt == 2:
                    raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

