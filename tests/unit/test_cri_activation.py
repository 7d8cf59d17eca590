"""The CRI socket's activation: the first client starts the server and is relayed to it until its first
response has ended (then an HTTP/2 GOAWAY moves it), later clients reach the server itself, and a runtime
that no client talks to never loads grpc."""
from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import sys
from pathlib import Path

from runtime.cri.activation import GOAWAY, SocketActivation

HEADERS, CONTINUATION, END_STREAM, END_HEADERS = 0x1, 0x9, 0x1, 0x4


def frame(kind: int, flags: int, payload: bytes, stream: int = 1) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


SETTINGS = frame(0x4, 0, b"", stream=0)


class _Server:
    """A stand-in for the gRPC server: SETTINGS, then for each line a response ending with trailers, the
    trailers' header block split over a CONTINUATION when the line says so."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.started = 0
        self.gate = asyncio.Event()  # a test holds the start until it has its early connections
        self.gate.set()

    async def start(self, path: str) -> None:
        self.started += 1
        await self.gate.wait()
        self.server = await asyncio.start_unix_server(self._handle, path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(SETTINGS)
        while line := await reader.readline():
            writer.write(response(line))
            await writer.drain()
        writer.close()


def response(line: bytes) -> bytes:
    if line.startswith(b"split"):
        return frame(HEADERS, END_STREAM, b"a") + frame(CONTINUATION, END_HEADERS, line)
    return frame(HEADERS, 0, b"h") + frame(0x0, 0, line) + frame(HEADERS, END_STREAM | END_HEADERS, b"t")


async def _ask(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], line: bytes, goaway: bool = False) -> None:
    reader, writer = conn
    writer.write(line)
    await writer.drain()
    expected = response(line) + (GOAWAY if goaway else b"")
    assert await reader.readexactly(len(expected)) == expected


async def _open(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(path)


async def _greeted(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    assert await conn[0].readexactly(len(SETTINGS)) == SETTINGS


async def test_the_first_client_is_relayed_until_its_first_response_ends(tmp_path: Path) -> None:
    path = str(tmp_path / "cri.sock")
    server = _Server()
    server.gate.clear()
    activation = SocketActivation(path, server.start)
    activation.listen()
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o660)
    try:
        first = await _open(path)
        early = await _open(path)  # before the server runs: relayed too
        server.gate.set()
        for conn in (first, early):
            await _greeted(conn)
        await _ask(first, b"one\n", goaway=True)
        await _ask(first, b"two\n")  # a client that keeps streaming on it is still served
        await _ask(early, b"split\n", goaway=True)  # never between a header block's frames
        later = await _open(path)
        await _greeted(later)
        await _ask(later, b"three\n")
        await _ask(later, b"four\n")
        assert server.started == 1
        assert not os.path.exists(activation.staging)
        first[1].write_eof()
        assert await first[0].read() == b""  # the server's close reaches the relayed client
        for _, w in (first, early, later):
            w.close()
    finally:
        await activation.close()
        assert server.server is not None
        server.server.close()


async def test_a_failed_start_is_tried_again_by_the_next_client(tmp_path: Path) -> None:
    path = str(tmp_path / "cri.sock")
    server = _Server()
    calls = 0

    async def flaky(staging: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        await server.start(staging)

    activation = SocketActivation(path, flaky)
    activation.listen()
    try:
        reader, writer = await _open(path)
        assert await reader.read() == b""  # closed: the start failed
        writer.close()
        again = await _open(path)
        await _greeted(again)
        await _ask(again, b"x\n", goaway=True)
        again[1].close()
    finally:
        await activation.close()
        if server.server is not None:
            server.server.close()


def test_the_runtime_daemon_loads_no_grpc_until_the_cri_is_used() -> None:
    code = ("import sys, runtime.daemon; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'cri_api', 'google')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
