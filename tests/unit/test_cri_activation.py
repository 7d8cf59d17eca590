"""The CRI socket's activation: the first client starts the server and is relayed to it, later clients
reach the server itself, and a runtime that no client talks to never loads grpc."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from runtime.cri.activation import SocketActivation


class _Echo:
    """A stand-in for the gRPC server: an echo of every line."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.started = 0
        self.gate = asyncio.Event()  # the test holds the start until it has its early connections
        self.gate.set()

    async def start(self, path: str) -> None:
        self.started += 1
        await self.gate.wait()
        self.server = await asyncio.start_unix_server(self._handle, path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(b"echo " + line)
            await writer.drain()
        writer.close()


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> bytes:
    writer.write(line)
    await writer.drain()
    return await reader.readline()


async def test_the_first_client_starts_the_server_and_is_relayed(tmp_path: Path) -> None:
    path = str(tmp_path / "cri.sock")
    echo = _Echo()
    echo.gate.clear()
    activation = SocketActivation(path, echo.start)
    activation.listen()
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o660)
    try:
        first = await asyncio.open_unix_connection(path)
        early = await asyncio.open_unix_connection(path)  # before the server runs: relayed too
        echo.gate.set()
        assert await _ask(*first, b"one\n") == b"echo one\n"
        assert await _ask(*early, b"two\n") == b"echo two\n"
        later = await asyncio.open_unix_connection(path)
        assert await _ask(*later, b"three\n") == b"echo three\n"
        assert echo.started == 1
        assert not os.path.exists(activation.staging)
        first[1].write_eof()
        assert await first[0].read() == b""  # the server's close reaches the relayed client
        for _, w in (first, early, later):
            w.close()
    finally:
        await activation.close()
        assert echo.server is not None
        echo.server.close()


async def test_a_failed_start_is_tried_again_by_the_next_client(tmp_path: Path) -> None:
    path = str(tmp_path / "cri.sock")
    echo = _Echo()
    calls = 0

    async def flaky(staging: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        await echo.start(staging)

    activation = SocketActivation(path, flaky)
    activation.listen()
    try:
        reader, writer = await asyncio.open_unix_connection(path)
        assert await reader.read() == b""  # closed: the start failed
        writer.close()
        again = await asyncio.open_unix_connection(path)
        assert await _ask(*again, b"x\n") == b"echo x\n"
        again[1].close()
    finally:
        await activation.close()
        if echo.server is not None:
            echo.server.close()


def test_the_runtime_daemon_loads_no_grpc_until_the_cri_is_used() -> None:
    code = ("import sys, runtime.daemon; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'cri_api', 'google')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
