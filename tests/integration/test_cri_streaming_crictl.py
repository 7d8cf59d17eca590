"""The real crictl (v1.26.1, Go's SPDY client) against the streaming server.

A tiny CRI gRPC server in the test answers Version and Exec/Attach/PortForward with the streaming
server's URLs; the backend runs host processes and dials a local echo server.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.cri.streaming.backend import AttachRequest, ExecRequest, PortForwardRequest
from runtime.cri.streaming.server import StreamingServer
from tests.fixtures.cri_streaming import HostBackend

CRICTL = Path(__file__).resolve().parents[2].parent / "shared" / "bin" / "crictl"
if not CRICTL.exists():
    CRICTL = Path("/work/shared/bin/crictl")

pytestmark = pytest.mark.skipif(not CRICTL.exists(),
                                reason=f"crictl is not installed at {CRICTL} (see issue 13)")

grpc = pytest.importorskip("grpc")
from cri_api.v1 import api_pb2 as pb, api_pb2_grpc as pbg  # noqa: E402


class FakeRuntime(pbg.RuntimeServiceServicer):
    """Only what crictl's exec, attach and port-forward call."""

    def __init__(self, streaming: StreamingServer) -> None:
        self.streaming = streaming

    async def Version(self, request, context):  # noqa: N802 - gRPC method names
        return pb.VersionResponse(version="0.1.0", runtime_name="fake", runtime_version="0.1",
                                  runtime_api_version="v1")

    async def Exec(self, request, context):  # noqa: N802
        return pb.ExecResponse(url=self.streaming.get_exec(ExecRequest(
            request.container_id, list(request.cmd), request.tty, request.stdin,
            request.stdout, request.stderr)))

    async def Attach(self, request, context):  # noqa: N802
        return pb.AttachResponse(url=self.streaming.get_attach(AttachRequest(
            request.container_id, request.tty, request.stdin, request.stdout, request.stderr)))

    async def PortForward(self, request, context):  # noqa: N802
        return pb.PortForwardResponse(url=self.streaming.get_port_forward(
            PortForwardRequest(request.pod_sandbox_id, list(request.port))))


@pytest.fixture
async def cri(tmp_path: Path) -> AsyncIterator[tuple[str, HostBackend]]:
    backend = HostBackend()
    streaming = StreamingServer(backend)
    await streaming.start()
    server = grpc.aio.server()
    pbg.add_RuntimeServiceServicer_to_server(FakeRuntime(streaming), server)
    sock = tmp_path / "cri.sock"
    server.add_insecure_port(f"unix://{sock}")
    await server.start()
    try:
        yield f"unix://{sock}", backend
    finally:
        await server.stop(None)
        await streaming.stop()


async def crictl(endpoint: str, *args: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        str(CRICTL), "--runtime-endpoint", endpoint, "--timeout", "20s", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def test_exec_output_and_exit_code(cri: tuple[str, HostBackend]) -> None:
    endpoint, _ = cri
    code, out, err = await crictl(endpoint, "exec", "ctr", "sh", "-c", "echo out; echo err >&2")
    assert code == 0, err
    assert out == b"out\n"
    assert b"err\n" in err
    code, out, err = await crictl(endpoint, "exec", "ctr", "sh", "-c", "echo bye; exit 7")
    assert out == b"bye\n"
    # crictl 1.26 exits 1 and names the code it decoded from the Status's ExitCode cause
    assert code == 1
    assert b"command terminated with exit code 7" in err


async def test_exec_large_output(cri: tuple[str, HostBackend]) -> None:
    endpoint, _ = cri
    code, out, err = await crictl(endpoint, "exec", "ctr", "sh", "-c",
                                  "head -c 3000000 /dev/zero | tr '\\0' x")
    assert code == 0, err
    assert out == b"x" * 3_000_000


async def test_exec_interactive_stdin(cri: tuple[str, HostBackend]) -> None:
    endpoint, _ = cri
    data = b"".join(b"line %d\n" % i for i in range(50000))
    code, out, err = await crictl(endpoint, "exec", "-i", "ctr", "sh", "-c", "wc -l; cat",
                                  stdin=data)
    assert code == 0, err
    assert out == b"50000\n" or out.startswith(b"50000\n")


async def test_exec_stdin_the_command_never_reads(cri: tuple[str, HostBackend]) -> None:
    endpoint, _ = cri
    code, out, err = await crictl(endpoint, "exec", "-i", "ctr", "sh", "-c", "echo done",
                                  stdin=b"i" * 5_000_000)
    assert code == 0, err
    assert out == b"done\n"


async def test_attach(cri: tuple[str, HostBackend]) -> None:
    endpoint, backend = cri
    backend.attach_commands["main"] = ["sh", "-c", "read line; echo got $line; exit 0"]
    code, out, err = await crictl(endpoint, "attach", "-i", "main", stdin=b"hello\n")
    assert code == 0, err
    assert out == b"got hello\n"


async def _read_until(fd: int, marker: bytes, seen: bytearray) -> None:
    loop = asyncio.get_running_loop()
    while marker not in seen:
        try:
            chunk = await loop.run_in_executor(None, os.read, fd, 4096)
        except OSError:  # EIO: the terminal's other side is closed
            chunk = b""
        if not chunk:
            raise EOFError(f"pty closed before {marker!r}; saw {bytes(seen)!r}")
        seen += chunk


async def _size_applied(backend: HostBackend, width: int) -> None:
    while not any(s.width == width for s in backend.sizes):
        await asyncio.sleep(0.05)


async def test_exec_tty_with_resize(cri: tuple[str, HostBackend]) -> None:
    endpoint, backend = cri
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    proc = await asyncio.create_subprocess_exec(
        str(CRICTL), "--runtime-endpoint", endpoint, "exec", "-it", "ctr", "sh", "-c",
        "read x; stty size; read y; echo typed-$y; stty size",
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    seen = bytearray()
    try:
        # crictl sends the terminal's size when it starts and again on every SIGWINCH
        await asyncio.wait_for(_size_applied(backend, 111), 20)
        os.write(master, b"go\r")
        await asyncio.wait_for(_read_until(master, b"33 111", seen), 20)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(proc.pid, signal.SIGWINCH)
        await asyncio.wait_for(_size_applied(backend, 120), 20)
        os.write(master, b"abc\r")
        await asyncio.wait_for(_read_until(master, b"40 120", seen), 20)
        assert b"typed-abc" in seen
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)


async def test_port_forward(cri: tuple[str, HostBackend], unused_tcp_port_factory) -> None:
    endpoint, backend = cri

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    echo_port = echo_server.sockets[0].getsockname()[1]
    closed_port = unused_tcp_port_factory()
    local, local_to_closed = unused_tcp_port_factory(), unused_tcp_port_factory()
    proc = await asyncio.create_subprocess_exec(
        str(CRICTL), "--runtime-endpoint", endpoint, "port-forward", "pod1",
        f"{local}:{echo_port}", f"{local_to_closed}:{closed_port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for _ in range(2):
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert b"Forwarding from" in line
        for payload in (b"ping", b"y" * 300_000):
            reader, writer = await asyncio.open_connection("127.0.0.1", local)
            writer.write(payload)
            await writer.drain()
            got = await asyncio.wait_for(reader.readexactly(len(payload)), 20)
            assert got == payload
            writer.close()
        assert backend.forwarded == [("pod1", echo_port), ("pod1", echo_port)]
        # a port nobody listens on: the client hears of it and the local connection ends
        reader, writer = await asyncio.open_connection("127.0.0.1", local_to_closed)
        assert await asyncio.wait_for(reader.read(), 20) == b""
        writer.close()
        errors = bytearray()
        while b"error forwarding port" not in errors:
            errors += await asyncio.wait_for(proc.stderr.readline(), 20)
        assert b"to pod pod1" in errors
    finally:
        proc.terminate()
        await proc.wait()
        echo_server.close()
        await echo_server.wait_closed()
