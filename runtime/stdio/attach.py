"""Attaching to a conmon-supervised process: its output, its stdin, its terminal size.

conmon 2.1 listens on an AF_UNIX SOCK_SEQPACKET socket. Every packet it sends is one
output chunk prefixed with a byte naming the stream (2 = stdout, 3 = stderr; a terminal
is a single stream reported as stdout); we hand out fd numbers instead (1 and 2), as
Docker's stream multiplexing does. Packets we send are written to the process's stdin;
conmon reads at most 32 KiB of a packet and drops the rest, so writes are chunked.
shutdown(SHUT_WR) closes the process's stdin while output keeps flowing (unless conmon
runs with --leave-stdin-open); so does disconnecting.

The socket may live at a path longer than sun_path allows (108 bytes): we connect
through /proc/self/fd/<dirfd>/<name>, as conmon binds it with --full-attach.

Both sides speak this protocol: the runtime's conmon shim resizes terminals through it, and
the engine and pyctr attach through runtime.client.attach, which re-exports it. So it lives
outside runtime/client (the runtime never imports its own client) and imports nothing of
the runtime but its errors.
"""
from __future__ import annotations

import asyncio
import errno
import inspect
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

from runtime.errors import FailedPrecondition, Internal, InvalidArgument, NotFound

STDOUT = 1
STDERR = 2
_STREAMS = {2: STDOUT, 3: STDERR}

_STDIN_CHUNK = 32 * 1024  # conmon's read size for one packet (checked: 40 KB packets lose the tail)
_RECV_SIZE = 64 * 1024

# conmon's ctl fifo takes "<type> <height> <width>\n"; type 1 resizes the terminal.
_CTL_RESIZE = 1


class Attachment:
    """One connection to a process's attach socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, socket_path: str) -> "Attachment":
        """Connect; NotFound if the socket is gone, FailedPrecondition if conmon no longer listens."""
        directory, name = os.path.split(os.path.abspath(socket_path))
        try:
            dirfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"no attach socket at {socket_path}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dirfd}/{name}")
        except FileNotFoundError:
            sock.close()
            raise NotFound(f"no attach socket at {socket_path}") from None
        except ConnectionRefusedError:
            sock.close()
            raise FailedPrecondition(f"nothing listens on {socket_path}: the process has exited") from None
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(dirfd)
        return cls(sock)

    async def read(self) -> tuple[int, bytes] | None:
        """The next output chunk as (STDOUT|STDERR, data); None once the process's output ended."""
        try:
            packet = await self._loop.sock_recv(self._sock, _RECV_SIZE)
        except ConnectionResetError:
            # conmon closed its end with stdin we sent still unread: the kernel says so once, ahead of the output
            # still queued for us (the last lines of a process that stopped reading its stdin), so read on.
            try:
                packet = await self._loop.sock_recv(self._sock, _RECV_SIZE)
            except ConnectionResetError:
                return None
        if not packet:
            return None
        stream = _STREAMS.get(packet[0])
        if stream is None:
            raise Internal(f"unexpected stream id {packet[0]} from conmon's attach socket")
        return stream, packet[1:]

    async def write(self, data: bytes) -> None:
        """Write to the process's stdin; FailedPrecondition once conmon stopped listening."""
        view = memoryview(data)
        try:
            for i in range(0, len(view), _STDIN_CHUNK):
                await self._loop.sock_sendall(self._sock, view[i:i + _STDIN_CHUNK])
        except (BrokenPipeError, ConnectionResetError):
            raise FailedPrecondition("the process's stdin is closed") from None

    def close_stdin(self) -> None:
        """Close the process's stdin (it reads EOF); output keeps coming."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                raise

    def close(self) -> None:
        self._sock.close()

    async def __aenter__(self) -> "Attachment":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[tuple[int, bytes]]:
        while (chunk := await self.read()) is not None:
            yield chunk


OutputCallback = Callable[[int, bytes], Awaitable[None] | None]


async def attach(socket_path: str, *, stdin: AsyncIterator[bytes] | None, on_output: OutputCallback) -> None:
    """Pump a process's stdio until its output ends.

    Each output chunk goes to `on_output(STDOUT|STDERR, data)` (a plain or async callable).
    `stdin` chunks are written to the process; when the iterator is exhausted the
    process's stdin is closed. Returns when conmon closes the socket (the process exited).
    """
    async with await Attachment.connect(socket_path) as a:
        pump = asyncio.create_task(_pump_stdin(a, stdin)) if stdin is not None else None
        try:
            async for stream, data in a:
                result = on_output(stream, data)
                if inspect.isawaitable(result):
                    await result
        finally:
            if pump is not None:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)


async def _pump_stdin(a: Attachment, stdin: AsyncIterator[bytes]) -> None:
    try:
        async for chunk in stdin:
            await a.write(chunk)
    except FailedPrecondition:
        # The process is gone or closed its end; its output, still being read, says the rest.
        return
    a.close_stdin()


async def resize(ctl_path: str, rows: int, cols: int) -> None:
    """Resize the process's terminal through conmon's ctl fifo."""
    if not (0 <= rows < 65536 and 0 <= cols < 65536):
        raise InvalidArgument(f"invalid terminal size {rows}x{cols}")
    message = f"{_CTL_RESIZE} {rows} {cols}\n".encode()
    try:
        # O_NONBLOCK: opening a fifo nobody reads would block forever; it fails with ENXIO instead.
        fd = os.open(ctl_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"no control fifo at {ctl_path}") from None
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise FailedPrecondition(f"conmon no longer reads {ctl_path}: the process has exited") from None
        raise
    try:
        # Shorter than PIPE_BUF: written whole or not at all.
        os.write(fd, message)
    except BlockingIOError:
        raise FailedPrecondition(f"conmon is not keeping up with {ctl_path}") from None
    finally:
        os.close(fd)
