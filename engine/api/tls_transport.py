"""TLS for the engine's tcp hosts, with the half-close that hijacked streams need.

asyncio's own TLS transport cannot half-close: when the peer sends close_notify it
shuts the whole connection down. The docker CLI, over TLS, ends its side of an attach
or exec (right after the `101 UPGRADED` when it has no stdin) with exactly that, Go's
`tls.Conn.CloseWrite`, and still reads the container's output until the server closes.
So this transport runs TLS itself over memory BIOs: a close_notify from the client is
EOF for the application (aiohttp, then engine/api/hijack.py), which decides whether the
connection stays open for writing, as it does over a unix socket.

TLSConnection is the protocol of the raw TCP connection and, once the handshake is done,
the transport aiohttp's request handler sees. A failed handshake (no client certificate,
one from another CA) is logged and closes the connection; the application never sees it.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web

log = logging.getLogger("engine.api.tls")

HANDSHAKE_TIMEOUT = 60.0
_READ_SIZE = 256 * 1024


class TLSConnection(asyncio.Protocol, asyncio.Transport):
    def __init__(self, context: ssl.SSLContext, app: asyncio.BaseProtocol) -> None:
        asyncio.Transport.__init__(self)
        self._context = context
        self._app = app
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._raw: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._established = False
        self._app_eof = False
        self._keep_open = False
        self._closing = False

    # The raw TCP side.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._raw = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # after a failed handshake or a close: nothing more is read
        self._incoming.write(data)
        if not self._established and not self._handshake():
            return
        self._pump()

    def eof_received(self) -> bool | None:
        if not self._established:
            return False
        self._incoming.write_eof()
        self._pump()
        return self._keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._closing = True
        if self._established:
            self._app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._established:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._established:
            self._app.resume_writing()

    def _peer(self) -> str:
        peer = self._raw.get_extra_info("peername") if self._raw is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    def _handshake_timed_out(self) -> None:
        log.info("TLS handshake error from %s: timed out", self._peer())
        self.abort()

    def _handshake(self) -> bool:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except (ssl.SSLError, ssl.CertificateError) as e:
            # dockerd's wording (Go's http server): the handshake error and who it came from.
            log.info("TLS handshake error from %s: %s", self._peer(), e)
            self._flush()  # the alert tells the client why
            self._close_raw()
            return False
        assert self._timer is not None
        self._timer.cancel()
        self._established = True
        self._flush()
        self._app.connection_made(self)
        return True

    def _pump(self) -> None:
        """Decrypted bytes to the application until the BIO runs dry; close_notify or EOF is its EOF."""
        while not self._app_eof and not self._closing:
            try:
                chunk = self._ssl.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                chunk = b""
            except ssl.SSLError as e:
                log.info("TLS error from %s: %s", self._peer(), e)
                self.abort()
                return
            if not chunk:
                self._app_eof = True
                self._keep_open = bool(cast(asyncio.Protocol, self._app).eof_received())
                if not self._keep_open:
                    self.close()
                break
            cast(asyncio.Protocol, self._app).data_received(chunk)
        self._flush()

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and self._raw is not None and not self._raw.is_closing():
            self._raw.write(data)

    def _close_raw(self) -> None:
        self._closing = True
        if self._raw is not None:
            self._raw.close()  # close (not abort) lets the alert already written leave first

    # The transport the application sees.

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.is_closing():
            return
        view = memoryview(data)
        while view:
            view = view[self._ssl.write(view):]
        self._flush()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS connections close; they are not half-closed by the server")

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        try:
            self._ssl.unwrap()
        except ssl.SSLError:
            pass  # our close_notify is queued; the client's answer is not awaited
        self._flush()
        if self._raw is not None:
            self._raw.close()

    def abort(self) -> None:
        self._closing = True
        if self._raw is not None:
            self._raw.abort()

    def is_closing(self) -> bool:
        return self._closing or self._raw is None or self._raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sslcontext":
            return self._context
        if name == "ssl_object":
            return self._ssl
        if name == "peercert":
            return self._ssl.getpeercert()
        if name == "cipher":
            return self._ssl.cipher()
        return self._raw.get_extra_info(name, default) if self._raw is not None else default

    def pause_reading(self) -> None:
        if self._raw is not None:
            self._raw.pause_reading()

    def resume_reading(self) -> None:
        if self._raw is not None:
            self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw is not None and self._raw.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._app = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._app

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size() if self._raw is not None else 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._raw.get_write_buffer_limits() if self._raw is not None else (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if self._raw is not None:
            self._raw.set_write_buffer_limits(high, low)


class TLSSite(web.SockSite):
    """aiohttp's site for a listening socket, each accepted connection wrapped in a TLSConnection."""

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, context: ssl.SSLContext) -> None:
        super().__init__(runner, sock)
        self._tls = context
        self._listening = sock
        host, port = sock.getsockname()[:2]
        self._tls_name = f"https://{host}:{port}"

    @property
    def name(self) -> str:
        return self._tls_name

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        factory: Callable[[], asyncio.BaseProtocol] = server
        self._server = await asyncio.get_running_loop().create_server(
            lambda: TLSConnection(self._tls, factory()), sock=self._listening)
