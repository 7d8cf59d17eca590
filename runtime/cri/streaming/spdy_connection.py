"""A SPDY/3.1 connection over an asyncio byte stream: streams, flow control, ping, goaway.

The server side accepts the streams a client opens (`accept`); the client side (`open_stream`) is
here too because the protocol is symmetric and the tests drive the server with it.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from runtime.cri.streaming import spdy

log = logging.getLogger(__name__)

# Larger writes are cut into frames of this size so that one stream cannot hold the connection.
CHUNK = 32 * 1024
# At most this much unread data is buffered per stream before the connection stops reading (TCP
# then holds the peer back); only peers that ignore our window get that far.
MAX_UNREAD = 1024 * 1024


class ByteWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...


class StreamReset(ConnectionResetError):
    """The stream was reset by the peer or the connection went away."""


class SpdyStream:
    """One stream: a byte pipe each way, half-closed by FIN, aborted by RST_STREAM."""

    def __init__(self, conn: SpdyConnection, stream_id: int, headers: spdy.Headers) -> None:
        self._conn = conn
        self.id = stream_id
        self.headers = headers
        self.reply_headers: spdy.Headers = {}
        self.remote_closed = False
        self.local_closed = False
        self.reset_status: int | None = None
        self.send_window = conn.peer_initial_window
        self._buf = bytearray()
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._discarding = False
        self._replied: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unacked = 0

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def closed(self) -> bool:
        return self.reset_status is not None or (self.local_closed and self.remote_closed)

    async def read(self, n: int = 65536) -> bytes:
        """Up to n bytes; b"" once the peer has finished (FIN) or the stream is gone."""
        while not self._buf and not self.remote_closed and self.reset_status is None:
            self._readable.clear()
            await self._readable.wait()
        if not self._buf:
            return b""
        data = bytes(self._buf[:n])
        del self._buf[:n]
        if len(self._buf) < MAX_UNREAD:
            self._drained.set()
        self._conn._consumed(self, len(data))
        return data

    async def read_all(self) -> bytes:
        chunks = []
        while chunk := await self.read():
            chunks.append(chunk)
        return b"".join(chunks)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = await self._conn._reserve(self, min(len(view), CHUNK))
            await self._conn._send(spdy.DataFrame(self.id, bytes(view[:n])))
            view = view[n:]

    async def close(self) -> None:
        """Half-close our side (FIN); reading goes on until the peer's FIN."""
        if self.local_closed or self.reset_status is not None:
            return
        self.local_closed = True
        await self._conn._send(spdy.DataFrame(self.id, b"", spdy.FLAG_FIN))
        self._conn._maybe_forget(self)

    async def reply(self, headers: spdy.Headers | None = None, fin: bool = False) -> None:
        """Accept a stream the peer opened (SYN_REPLY)."""
        if fin:
            self.local_closed = True
        await self._conn._send(spdy.SynReply(self.id, headers or {}, spdy.FLAG_FIN if fin else 0))
        self._conn._maybe_forget(self)

    async def reset(self, status: int = spdy.CANCEL) -> None:
        if self.reset_status is not None:
            return
        self._on_reset(status)
        await self._conn._send(spdy.RstStream(self.id, status))

    def discard(self) -> None:
        """Nobody will read this stream any more: drop what it holds and what still comes."""
        self._discarding = True
        self._buf.clear()
        self._drained.set()
        self._conn._maybe_forget(self)

    def _on_data(self, data: bytes, fin: bool) -> None:
        if not self._discarding:
            self._buf += data
        if fin:
            self.remote_closed = True
        self._readable.set()

    def _on_reset(self, status: int) -> None:
        self.reset_status = status
        self._readable.set()
        self._drained.set()
        if not self._replied.done():
            self._replied.set_exception(StreamReset(f"stream {self.id} reset (status {status})"))
        self._conn._forget(self)


class SpdyConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: ByteWriter, *, server: bool,
                 receive_window: int = spdy.DEFAULT_WINDOW) -> None:
        self._reader = reader
        self._writer = writer
        self.server = server
        self.streams: dict[int, SpdyStream] = {}
        self._incoming: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self._next_id = 2 if server else 1
        self._last_peer_id = 0
        self._next_ping = 2 if server else 1
        self._pings: dict[int, asyncio.Future[None]] = {}
        self._compressor = spdy.HeaderCompressor()
        self._decompressor = spdy.HeaderDecompressor()
        self._window_changed = asyncio.Condition()
        self.peer_initial_window = spdy.DEFAULT_WINDOW
        self.send_window = spdy.DEFAULT_WINDOW
        self.receive_window = receive_window
        self._unacked = 0
        # Go's spdystream (kubectl, crictl, kubelet) announces SPDY/3.1 but neither sends
        # WINDOW_UPDATE nor honours ours: holding it to a 64 KiB send window would stall every
        # large output. A peer shows it does flow control by sending WINDOW_UPDATE or an initial
        # window in SETTINGS; from then on its windows bind us.
        self.peer_flow_control = False
        self.going_away = False
        self.closed = asyncio.Event()

    async def serve(self) -> None:
        """Read frames until the peer closes the connection or breaks the protocol."""
        try:
            while True:
                try:
                    head = await self._reader.readexactly(8)
                    _, _, _, length = spdy.parse_head(head)
                    body = await self._reader.readexactly(length)
                    frame = spdy.decode_frame(head, body, self._decompressor)
                except asyncio.IncompleteReadError:
                    return
                if frame is not None:
                    await self._dispatch(frame)
        except spdy.SpdyProtocolError as e:
            log.debug("SPDY protocol error: %s", e)
            await self.goaway(spdy.GOAWAY_PROTOCOL_ERROR)
        except (ConnectionError, OSError) as e:
            log.debug("SPDY connection lost: %s", e)
        finally:
            self._shut()

    def _shut(self) -> None:
        for answered in self._pings.values():
            if not answered.done():
                answered.set_exception(StreamReset("connection closed before the PING reply"))
        for stream in list(self.streams.values()):
            stream._on_reset(spdy.CANCEL)
        self._incoming.put_nowait(None)
        self.closed.set()

        async def wake() -> None:
            async with self._window_changed:
                self._window_changed.notify_all()
        asyncio.ensure_future(wake())

    async def accept(self) -> SpdyStream | None:
        """The next stream the peer opened; None once the connection is over."""
        stream = await self._incoming.get()
        if stream is None:
            self._incoming.put_nowait(None)
        return stream

    async def open_stream(self, headers: spdy.Headers, fin: bool = False) -> SpdyStream:
        """Open a stream (SYN_STREAM) and wait for the peer's SYN_REPLY."""
        if self.closed.is_set() or self.going_away:
            raise StreamReset("connection is closed")
        stream = SpdyStream(self, self._next_id, headers)
        self._next_id += 2
        stream.local_closed = fin
        self.streams[stream.id] = stream
        await self._send(spdy.SynStream(stream.id, headers, spdy.FLAG_FIN if fin else 0))
        await stream._replied
        return stream

    async def settings(self, values: dict[int, int]) -> None:
        """Announce settings; an initial window here becomes the window we grant each stream."""
        window = values.get(spdy.SETTINGS_INITIAL_WINDOW_SIZE)
        if window is not None:
            self.receive_window = window
        await self._send(spdy.Settings(values))

    async def ping(self) -> None:
        """Send a PING and wait for the peer to echo it."""
        ping_id = self._next_ping
        self._next_ping += 2
        answered = asyncio.get_running_loop().create_future()
        self._pings[ping_id] = answered
        try:
            await self._send(spdy.Ping(ping_id))
            await answered
        finally:
            self._pings.pop(ping_id, None)

    async def goaway(self, status: int = spdy.GOAWAY_OK) -> None:
        if self.going_away:
            return
        self.going_away = True
        try:
            await self._send(spdy.GoAway(self._last_peer_id, status))
        except (ConnectionError, OSError):
            pass

    def close(self) -> None:
        self._writer.close()

    async def _send(self, frame: spdy.Frame) -> None:
        if self.closed.is_set() and not isinstance(frame, spdy.GoAway):
            raise StreamReset("connection is closed")
        # Encoding and writing in one synchronous step keeps the shared zlib stream in wire order.
        self._writer.write(spdy.encode_frame(frame, self._compressor))
        await self._writer.drain()

    async def _dispatch(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.DataFrame):
            await self._on_data(frame)
        elif isinstance(frame, spdy.SynStream):
            await self._on_syn_stream(frame)
        elif isinstance(frame, spdy.SynReply):
            stream = self.streams.get(frame.stream_id)
            if stream is None:
                return
            stream.reply_headers = frame.headers
            if not stream._replied.done():
                stream._replied.set_result(None)
            if frame.fin:
                stream._on_data(b"", True)
                self._maybe_forget(stream)
        elif isinstance(frame, spdy.HeadersFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream.headers.update(frame.headers)
                if frame.fin:
                    stream._on_data(b"", True)
                    self._maybe_forget(stream)
        elif isinstance(frame, spdy.RstStream):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream._on_reset(frame.status)
                await self._notify_window()
        elif isinstance(frame, spdy.Settings):
            await self._on_settings(frame)
        elif isinstance(frame, spdy.Ping):
            # Odd ids are the client's pings, even ids the server's: echo only the peer's.
            if (frame.ping_id % 2 == 1) == self.server:
                await self._send(frame)
            elif (answered := self._pings.get(frame.ping_id)) is not None and not answered.done():
                answered.set_result(None)
        elif isinstance(frame, spdy.GoAway):
            self.going_away = True
            self._incoming.put_nowait(None)
        elif isinstance(frame, spdy.WindowUpdate):
            await self._on_window_update(frame)

    async def _on_syn_stream(self, frame: spdy.SynStream) -> None:
        sid = frame.stream_id
        from_client = sid % 2 == 1
        if sid == 0 or from_client != self.server or sid <= self._last_peer_id:
            await self._send(spdy.RstStream(sid, spdy.PROTOCOL_ERROR))
            return
        self._last_peer_id = sid
        if self.going_away:
            await self._send(spdy.RstStream(sid, spdy.REFUSED_STREAM))
            return
        stream = SpdyStream(self, sid, frame.headers)
        stream.local_closed = frame.unidirectional
        stream._replied.set_result(None)
        self.streams[sid] = stream
        if frame.fin:
            stream._on_data(b"", True)
        self._incoming.put_nowait(stream)

    async def _on_data(self, frame: spdy.DataFrame) -> None:
        stream = self.streams.get(frame.stream_id)
        if stream is None:
            await self._send(spdy.RstStream(frame.stream_id, spdy.INVALID_STREAM))
            return
        if stream.remote_closed:
            await stream.reset(spdy.STREAM_ALREADY_CLOSED)
            return
        # Peers that ignore our window (see peer_flow_control) may overrun it; their data is
        # kept rather than refused, as the Go implementations expect.
        stream._on_data(frame.data, frame.fin)
        if frame.fin:
            self._maybe_forget(stream)
        while len(stream._buf) >= MAX_UNREAD and stream.reset_status is None:
            stream._drained.clear()
            await stream._drained.wait()

    async def _on_settings(self, frame: spdy.Settings) -> None:
        window = frame.values.get(spdy.SETTINGS_INITIAL_WINDOW_SIZE)
        if window is None:
            return
        self.peer_flow_control = True
        delta = window - self.peer_initial_window
        self.peer_initial_window = window
        for stream in self.streams.values():
            stream.send_window += delta
        await self._notify_window()

    async def _on_window_update(self, frame: spdy.WindowUpdate) -> None:
        self.peer_flow_control = True
        if frame.stream_id == 0:
            self.send_window += frame.delta
        else:
            stream = self.streams.get(frame.stream_id)
            if stream is None:
                return
            stream.send_window += frame.delta
            if stream.send_window > spdy.MAX_WINDOW:
                await stream.reset(spdy.FLOW_CONTROL_ERROR)
                return
        await self._notify_window()

    async def _notify_window(self) -> None:
        async with self._window_changed:
            self._window_changed.notify_all()

    async def _reserve(self, stream: SpdyStream, want: int) -> int:
        """How many bytes `stream` may send now (waiting for window if the peer does flow control)."""
        def check() -> None:
            if stream.reset_status is not None or self.closed.is_set():
                raise StreamReset(f"stream {stream.id} is gone")
            if stream.local_closed:
                raise StreamReset(f"stream {stream.id} is closed for writing")

        check()
        if not self.peer_flow_control:
            return want
        async with self._window_changed:
            await self._window_changed.wait_for(
                lambda: stream.reset_status is not None or self.closed.is_set()
                or (stream.send_window > 0 and self.send_window > 0))
        check()
        n = min(want, stream.send_window, self.send_window)
        stream.send_window -= n
        self.send_window -= n
        return n

    def _consumed(self, stream: SpdyStream, n: int) -> None:
        """Give the peer its window back once half of it has been read by the application."""
        stream._unacked += n
        self._unacked += n
        threshold = self.receive_window // 2
        frames: list[spdy.Frame] = []
        if stream._unacked >= threshold and not stream.remote_closed and stream.reset_status is None:
            frames.append(spdy.WindowUpdate(stream.id, stream._unacked))
            stream._unacked = 0
        if self._unacked >= threshold:
            frames.append(spdy.WindowUpdate(0, self._unacked))
            self._unacked = 0
        self._maybe_forget(stream)
        for frame in frames:
            if self.closed.is_set():
                return
            try:
                self._writer.write(spdy.encode_frame(frame))
            except (ConnectionError, OSError):
                return

    def _maybe_forget(self, stream: SpdyStream) -> None:
        if stream.local_closed and stream.remote_closed and not stream._buf:
            self._forget(stream)

    def _forget(self, stream: SpdyStream) -> None:
        if self.streams.get(stream.id) is stream and (stream.reset_status is not None
                                                      or not stream._buf):
            del self.streams[stream.id]
