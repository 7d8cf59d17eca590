"""A small HTTP/1.1 client over a Unix socket, on asyncio streams.

The runtime API is local, JSON and NDJSON only: this covers exactly that
(Content-Length and chunked bodies, keep-alive pooling) and starts in a few
milliseconds, where a general-purpose client costs pyctr a fifth of a second
on every command.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterable, AsyncIterator

_MAX_HEADER = 64 * 1024


class ProtocolError(Exception):
    pass


class Response:
    def __init__(self, conn: "_Conn", status: int, headers: dict[str, str]) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self._done = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip()

    async def chunks(self) -> AsyncIterator[bytes]:
        r = self._conn.reader
        try:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size_line = await r.readline()
                    if not size_line:
                        raise ProtocolError("connection closed inside a chunked body")
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while (await r.readline()) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    data = await r.readexactly(size)
                    await r.readexactly(2)
                    yield data
            elif "content-length" in self.headers:
                remaining = int(self.headers["content-length"])
                while remaining:
                    data = await r.read(min(remaining, 1 << 16))
                    if not data:
                        raise ProtocolError("connection closed inside a body")
                    remaining -= len(data)
                    yield data
            else:
                self._conn.reusable = False
                while data := await r.read(1 << 16):
                    yield data
            self._done = True
        finally:
            self._conn.release(self._done)

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    async def json(self) -> Any:
        return json.loads(await self.read())

    async def lines(self) -> AsyncIterator[bytes]:
        buf = b""
        async for chunk in self.chunks():
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line
        if buf:
            yield buf

    def close(self) -> None:
        if not self._done:
            self._conn.release(False)
            self._done = True


class _Conn:
    def __init__(self, pool: "UnixHTTP", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pool = pool
        self.reader = reader
        self.writer = writer
        self.reusable = True
        self._released = False

    def release(self, clean: bool) -> None:
        if self._released:
            return
        self._released = True
        if clean and self.reusable and not self.reader.at_eof() and len(self.pool._idle) < self.pool.max_idle:
            self.pool._idle.append(_Conn(self.pool, self.reader, self.writer))
        else:
            self.writer.close()


class UnixHTTP:
    def __init__(self, path: str, max_idle: int = 8) -> None:
        self.path = path
        self._idle: list[_Conn] = []
        self.max_idle = max_idle

    async def _connect(self, fresh: bool = False) -> tuple[_Conn, bool]:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn, True
            conn.writer.close()
        reader, writer = await asyncio.open_unix_connection(self.path, limit=_MAX_HEADER)
        return _Conn(self, reader, writer), False

    async def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                      body: bytes | AsyncIterable[bytes] | None = None) -> Response:
        """Send one request; the caller must consume or close() the response.

        A streamed body (an async iterable) goes out chunked, on a fresh connection: it
        cannot be replayed, so it must not meet a keep-alive connection the server closed.
        """
        while True:
            conn, reused = await self._connect(fresh=not isinstance(body, (bytes, type(None))))
            try:
                return await self._send(conn, method, target, headers or {}, body)
            except (ConnectionError, asyncio.IncompleteReadError, ProtocolError):
                conn.writer.close()
                # Only an idle keep-alive connection the server had closed is retried.
                if not reused:
                    raise
            except BaseException:
                conn.writer.close()  # a streamed body's source failed: the request is half sent
                raise

    async def _send(self, conn: _Conn, method: str, target: str, headers: dict[str, str],
                    body: bytes | AsyncIterable[bytes] | None) -> Response:
        lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is None or isinstance(body, bytes):
            if body is not None or method in ("POST", "PUT", "PATCH"):
                lines.append(f"Content-Length: {len(body or b'')}")
            conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
            await conn.writer.drain()
        else:
            lines.append("Transfer-Encoding: chunked")
            conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            # Errors of the body's source propagate; only a failed write is the server's doing.
            async for chunk in body:
                if chunk and not await self._write(conn, b"%x\r\n" % len(chunk), chunk, b"\r\n"):
                    break
            else:
                await self._write(conn, b"0\r\n\r\n")
        status_line = await conn.reader.readline()
        if not status_line:
            raise ConnectionResetError("server closed the connection")
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"bad status line {status_line!r}")
        resp_headers: dict[str, str] = {}
        while True:
            line = await conn.reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ProtocolError("connection closed inside headers")
            k, _, v = line.decode("latin-1").partition(":")
            resp_headers[k.strip().lower()] = v.strip()
        if resp_headers.get("connection", "").lower() == "close":
            conn.reusable = False
        status = int(parts[1])
        if status in (204, 304) or method == "HEAD":
            resp_headers["content-length"] = "0"
        return Response(conn, status, resp_headers)

    @staticmethod
    async def _write(conn: _Conn, *pieces: bytes) -> bool:
        try:
            # Piece by piece: joining them would copy every (large) chunk of a streamed body once more.
            for data in pieces:
                conn.writer.write(data)
            await conn.writer.drain()
            return True
        except ConnectionError:
            # The server answered before taking the whole body and hung up: that answer is still readable.
            conn.reusable = False
            return False

    async def close(self) -> None:
        for conn in self._idle:
            conn.writer.close()
        self._idle.clear()
