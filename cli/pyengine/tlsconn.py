"""TLS on the CLI's connections to a daemon (`--tlsverify`, a context's TLS material).

The records go through memory BIOs rather than an `ssl.SSLSocket`, for the hijacked streams of attach and
exec: their output is read on one thread while stdin is written on another (one SSL object may not be used by
two threads at once, so every use of it holds a lock while the socket I/O happens outside it), and the end of
stdin is a close_notify after which the output keeps coming, as Go's tls.Conn.CloseWrite does for the docker
CLI (an SSLSocket's shutdown drops the TLS session for both directions).

Imported only when a host uses TLS: `ssl` costs start-up every other command would pay.
"""
from __future__ import annotations

import io
import socket
import ssl
import threading
from typing import Any

_RECORD = 64 * 1024
# Go's words for the verification failures users meet, so scripts that grep the docker CLI's errors still match.
_VERIFY_WORDS = {
    2: "x509: certificate signed by unknown authority",
    18: "x509: certificate signed by unknown authority",
    19: "x509: certificate signed by unknown authority",
    20: "x509: certificate signed by unknown authority",
    21: "x509: certificate signed by unknown authority",
    9: "x509: certificate has expired or is not yet valid",
    10: "x509: certificate has expired or is not yet valid",
}
# What the daemon's alert means, in Go's words (`remote error: tls: ...`).
_ALERTS = {
    "CERTIFICATE_REQUIRED": "certificate required",
    "UNKNOWN_CA": "unknown certificate authority",
    "BAD_CERTIFICATE": "bad certificate",
    "CERTIFICATE_EXPIRED": "expired certificate",
    "HANDSHAKE_FAILURE": "handshake failure",
    "PROTOCOL_VERSION": "protocol version not supported",
}


class TLSFailure(OSError):
    """The TLS session could not be set up or was refused, worded as the docker CLI words it."""


def _failure(e: ssl.SSLError, hostname: str | None) -> TLSFailure:
    if isinstance(e, ssl.SSLCertVerificationError):
        code = e.verify_code
        if code == 62:
            return TLSFailure(f"tls: failed to verify certificate: x509: certificate is not valid for {hostname}")
        words = _VERIFY_WORDS.get(code) or f"x509: {e.verify_message}"
        return TLSFailure(f"tls: failed to verify certificate: {words}")
    reason = str(e.reason or "")
    for alert, words in _ALERTS.items():
        if "ALERT" in reason and reason.endswith(alert):
            return TLSFailure(f"remote error: tls: {words}")
    return TLSFailure(f"tls: {reason.lower().replace('_', ' ') or e}")


class TLSFilesError(Exception):
    """A CA, certificate or key file that cannot be used."""


def client_context(ca: str | None, cert: str | None, key: str | None, verify: bool) -> ssl.SSLContext:
    """The client side as the docker CLI sets it up: TLS 1.2 at least; the CA given (else the system's) unless
    verification is off; the client certificate and key when there are."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca:
        try:
            ctx.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as e:
            raise TLSFilesError(f'could not read CA certificate "{ca}": {_file_error(ca, e)}') from None
    else:
        ctx.load_default_certs()
    if cert or key:
        try:
            ctx.load_cert_chain(cert or "", key or "")
        except (OSError, ssl.SSLError) as e:
            raise TLSFilesError(f"could not load X509 key pair: {_file_error(cert or key or '', e)}") from None
    return ctx


def _file_error(path: str, e: Exception) -> str:
    if isinstance(e, FileNotFoundError):
        return f"open {path}: no such file or directory"
    return str(getattr(e, "strerror", None) or e)


class _Raw(io.RawIOBase):
    def __init__(self, conn: TLSConnection) -> None:
        self._conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._conn.recv_into(buffer)


class TLSConnection:
    """What api.Response and api.Hijacked use of a socket (sendall, makefile, shutdown, close), over TLS."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, hostname: str | None) -> None:
        self._sock = sock
        self._hostname = hostname
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = ctx.wrap_bio(self._incoming, self._outgoing, server_hostname=hostname)
        self._lock = threading.Lock()
        # Held from taking records out of the BIO until they are on the wire, so they leave in order.
        self._send_lock = threading.Lock()
        # Plaintext taken out of the session early (before a close_notify is sent), not yet read.
        self._early = bytearray()
        self._handshake()

    def _handshake(self) -> None:
        while True:
            try:
                with self._lock:
                    self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise TLSFailure("EOF: the daemon closed the connection during the TLS handshake") from None
            except ssl.SSLError as e:
                raise _failure(e, self._hostname) from None
        self._flush()

    def _flush(self) -> None:
        with self._send_lock:
            with self._lock:
                data = self._outgoing.read()
            if data:
                self._sock.sendall(data)

    def _fill(self) -> bool:
        """More records from the socket into the session; False at the end of the connection."""
        data = self._sock.recv(_RECORD)
        with self._lock:
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()
        return bool(data)

    def recv_into(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            with self._lock:
                if self._early:
                    n = min(len(view), len(self._early))
                    view[:n] = self._early[:n]
                    del self._early[:n]
                    return n
                try:
                    # Given a buffer, read() answers the count it filled (typeshed knows only the bytes form).
                    filled: Any = self._tls.read(len(view), view)
                    return int(filled)
                except ssl.SSLWantReadError:
                    pending = self._outgoing.pending
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return 0  # the daemon's close_notify, or its end of the connection without one
                except ssl.SSLError as e:
                    raise _failure(e, self._hostname) from None
            if pending and self._send_lock.acquire(blocking=False):
                # Records the session made while reading (key updates): sent unless a write is under way,
                # which takes them with its own.
                try:
                    with self._lock:
                        data = self._outgoing.read()
                    self._sock.sendall(data)
                finally:
                    self._send_lock.release()
            self._fill()

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_Raw(self))

    def sendall(self, data: bytes) -> None:
        with self._send_lock:
            with self._lock:
                self._tls.write(data)
                records = self._outgoing.read()
            self._sock.sendall(records)

    def _close_notify(self) -> None:
        with self._send_lock:
            with self._lock:
                # OpenSSL's second shutdown step reads the peer's records: what already arrived is decrypted
                # first, so that step finds nothing and returns "want read" without eating output.
                while True:
                    try:
                        self._early += self._tls.read(_RECORD)
                    except ssl.SSLError:
                        break
                try:
                    self._tls.unwrap()
                except ssl.SSLError:
                    pass
                records = self._outgoing.read()
            self._sock.sendall(records)

    def shutdown(self, how: int) -> None:
        if how == socket.SHUT_WR:
            self._close_notify()
        else:
            self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()
