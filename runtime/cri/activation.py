"""Socket activation of a server that is costly to load: its unix socket listens from the start, and the
first client that connects starts the server.

The server binds a sibling path and is renamed over the socket, so every later client reaches it
directly; the few connections accepted before that are relayed to it. The server speaks HTTP/2 (gRPC),
whose clients keep their connection for good (a kubelet for its life), so once the first response on a
relayed connection has ended the relay adds a GOAWAY that lets every open stream finish: the client
opens its next streams on a new connection, straight to the server, and the relayed one closes when its
streams are done.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable

log = logging.getLogger("runtime.cri")

_CHUNK = 64 * 1024
# HTTP/2 (RFC 9113): a frame's 9-byte header is length (24 bits), type, flags, stream id.
_FRAME_HEADER = 9
_HEADERS, _CONTINUATION = 0x1, 0x9
_END_STREAM, _END_HEADERS = 0x1, 0x4
# GOAWAY on stream 0 with the last stream id at its maximum (every open stream may finish), NO_ERROR.
GOAWAY = struct.pack(">I", 8)[1:] + bytes([0x7, 0]) + struct.pack(">III", 0, 0x7FFFFFFF, 0)


class SocketActivation:
    def __init__(self, path: str, start: Callable[[str], Awaitable[None]]) -> None:
        """`start(path)` serves on the unix socket `path` once it returns."""
        self.path = path
        self._start = start
        self._listener: socket.socket | None = None
        self._activation: asyncio.Task[bool] | None = None
        self._relays: set[asyncio.Task[None]] = set()

    @property
    def staging(self) -> str:
        return self.path + "~"

    def listen(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o660)
        sock.listen(128)
        sock.setblocking(False)
        self._listener = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        """Every connection waiting on the listener: each is relayed once the server runs."""
        if self._listener is None:
            return
        while True:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                log.warning("cri activation accept failed: %s", e)
                break
            if self._activation is None:
                self._activation = asyncio.create_task(self._activate(), name="cri-activation")
            task = asyncio.create_task(self._relay(conn, self._activation), name="cri-activation-relay")
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)

    async def _activate(self) -> bool:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.staging)
        try:
            await self._start(self.staging)
        except Exception:
            log.exception("cri activation failed; the next connection tries again")
            self._activation = None
            return False
        os.rename(self.staging, self.path)
        # Connections queued before the rename are still the listener's.
        self._accept()
        self._stop_listening()
        return True

    async def _relay(self, conn: socket.socket, activation: asyncio.Task[bool]) -> None:
        conn.setblocking(False)
        try:
            if not await asyncio.shield(activation):
                conn.close()
                return
            client_r, client_w = await asyncio.open_unix_connection(sock=conn)
        except BaseException:
            conn.close()
            raise
        try:
            server_r, server_w = await asyncio.open_unix_connection(self.path)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(_pump(client_r, server_w), _pump_until_goaway(server_r, client_w))
        finally:
            for w in (client_w, server_w):
                w.close()

    def _stop_listening(self) -> None:
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None

    async def close(self) -> None:
        """Stop listening and relaying; a server already started is the caller's to stop."""
        self._stop_listening()
        if self._activation is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._activation
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.staging)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def _pump_until_goaway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The server's frames, one by one until the first response has ended (its trailers' header block is
    complete), then a GOAWAY, then the rest as it comes."""
    ended = False
    try:
        while True:
            header = await reader.readexactly(_FRAME_HEADER)
            payload = await reader.readexactly(int.from_bytes(header[:3], "big"))
            writer.write(header + payload)
            kind, flags = header[3], header[4]
            if kind == _HEADERS and flags & _END_STREAM:
                ended = True
            if ended and kind in (_HEADERS, _CONTINUATION) and flags & _END_HEADERS:
                writer.write(GOAWAY)
                break
            await writer.drain()
    except asyncio.IncompleteReadError as e:
        writer.write(e.partial)
        await _pump(reader, writer)
        return
    except OSError:
        writer.close()
        return
    await _pump(reader, writer)
