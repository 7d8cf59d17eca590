"""Kubernetes remotecommand (exec, attach) over SPDY: streams by type, stdio copy, exit Status.

The client opens one stream per channel, each with a `streamType` header (error, stdin, stdout,
stderr, resize); the server waits for the streams the request calls for, runs the command, and
reports how it ended on the error stream: a metav1.Status in JSON (v4) or plain text (v2, v3).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from runtime.cri.streaming import spdy
from runtime.cri.streaming.backend import (AttachRequest, ExecRequest, InputStream, OutputStream,
                                           StreamingBackend, TerminalSize)
from runtime.cri.streaming.spdy_connection import SpdyConnection, SpdyStream, StreamReset

log = logging.getLogger(__name__)

V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
PROTOCOLS = (V4, V3, V2)

STREAM_TYPES = ("error", "stdin", "stdout", "stderr", "resize")
# kubelet's default: streams that do not all arrive within this time abort the request.
STREAM_CREATION_TIMEOUT = 30.0
# How long a finished session waits for the client to hang up before closing the connection.
HANGUP_GRACE = 10.0

Status = dict[str, Any]
SUCCESS: Status = {"metadata": {}, "status": "Success"}


def exit_status(code: int, cmd: list[str] | None) -> Status:
    """The Status kubelet reports for a command that exited non-zero."""
    what = (f"error executing command [{' '.join(cmd)}], exit code {code}" if cmd
            else f"exit code {code}")
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: {what}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def internal_error(err: BaseException) -> Status:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {err}",
            "reason": "InternalError", "details": {"causes": [{"message": str(err)}]},
            "code": 500}


def encode_status(status: Status, json_status: bool) -> bytes:
    """Wire form of a Status: JSON for v4+, the bare message (nothing on success) before."""
    if json_status:
        return json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return b""
    return str(status.get("message", "")).encode()


async def terminal_sizes(source: InputStream) -> AsyncIterator[TerminalSize]:
    """Resize events from a stream of concatenated JSON objects {"Width": w, "Height": h}."""
    decoder = json.JSONDecoder()
    buf = ""
    while True:
        chunk = await source.read()
        if not chunk:
            return
        buf += chunk.decode("utf-8", "replace")
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                obj, end = decoder.raw_decode(buf)
            except json.JSONDecodeError:
                break
            buf = buf[end:]
            if isinstance(obj, dict):
                yield TerminalSize(int(obj.get("Width", 0)), int(obj.get("Height", 0)))


class TolerantOutput:
    """Output that drops writes once the client's stream is gone: a process keeps running (and
    exits on its own or is cancelled with the session) rather than dying on a write error."""

    def __init__(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        self._write = write
        self.broken = False

    async def write(self, data: bytes) -> None:
        if self.broken or not data:
            return
        try:
            await self._write(data)
        except (StreamReset, ConnectionError, OSError):
            self.broken = True


async def run_session(backend: StreamingBackend, request: ExecRequest | AttachRequest,
                      stdin: InputStream | None, stdout: OutputStream | None,
                      stderr: OutputStream | None,
                      resize: AsyncIterator[TerminalSize] | None) -> Status:
    """Run the exec or attach on the backend; the Status that reports its end."""
    try:
        if isinstance(request, ExecRequest):
            code = await backend.exec(request.container_id, request.cmd, request.tty, stdin,
                                      stdout, stderr, resize)
            return SUCCESS if code == 0 else exit_status(code, request.cmd)
        await backend.attach(request.container_id, request.tty, stdin, stdout, stderr, resize)
        return SUCCESS
    except asyncio.CancelledError:
        raise
    except Exception as e:  # any backend failure is the client's error Status, as kubelet does
        log.info("streaming %s of %s failed: %s", type(request).__name__,
                 request.container_id, e)
        return internal_error(e)


def expected_stream_types(request: ExecRequest | AttachRequest, protocol: str) -> set[str]:
    wanted = {"error"}
    if request.stdin:
        wanted.add("stdin")
    if request.stdout:
        wanted.add("stdout")
    if request.stderr and not request.tty:
        wanted.add("stderr")
    if request.tty and protocol in (V4, V3):
        wanted.add("resize")
    return wanted


async def _collect_streams(conn: SpdyConnection, wanted: set[str]) -> dict[str, SpdyStream]:
    """The streams the client opens until the wanted ones are there (others it opens on the way
    are accepted too, as kubelet does, and left unused)."""
    streams: dict[str, SpdyStream] = {}
    while not wanted <= streams.keys():
        stream = await conn.accept()
        if stream is None:
            raise ConnectionResetError("client went away before opening its streams")
        kind = (stream.header("streamtype") or "").lower()
        if kind not in STREAM_TYPES or kind in streams:
            log.debug("refusing stream %d of type %r", stream.id, kind)
            await stream.reset(spdy.REFUSED_STREAM)
            continue
        await stream.reply()
        streams[kind] = stream
    return streams


async def _refuse_late_streams(conn: SpdyConnection) -> None:
    while (stream := await conn.accept()) is not None:
        await stream.reset(spdy.REFUSED_STREAM)


async def serve_spdy(conn: SpdyConnection, protocol: str, request: ExecRequest | AttachRequest,
                     backend: StreamingBackend) -> None:
    """Serve one exec/attach on an upgraded connection, then close it."""
    reader = asyncio.create_task(conn.serve())
    late: asyncio.Task[None] | None = None
    try:
        wanted = expected_stream_types(request, protocol)
        try:
            streams = await asyncio.wait_for(_collect_streams(conn, wanted),
                                             STREAM_CREATION_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionResetError) as e:
            log.info("remotecommand for %s: %s", request.container_id,
                     "streams did not arrive in time" if isinstance(e, asyncio.TimeoutError) else e)
            return
        late = asyncio.create_task(_refuse_late_streams(conn))
        used = {k: v for k, v in streams.items() if k in wanted}
        outputs = {k: TolerantOutput(used[k].write) for k in ("stdout", "stderr") if k in used}
        session = asyncio.create_task(run_session(
            backend, request, used.get("stdin"), outputs.get("stdout"), outputs.get("stderr"),
            terminal_sizes(used["resize"]) if "resize" in used else None))
        hangup = asyncio.create_task(conn.closed.wait())
        await asyncio.wait({session, hangup}, return_when=asyncio.FIRST_COMPLETED)
        if not session.done():
            # The client is gone: nobody is left to read the output or send stdin.
            session.cancel()
            await asyncio.gather(session, return_exceptions=True)
            return
        hangup.cancel()
        status = session.result()
        for stream in streams.values():
            stream.discard()
        try:
            # Every stream the client opened ends, so that none of its copy loops waits forever;
            # the error stream goes last, after the output it reports on.
            for kind, stream in streams.items():
                if kind != "error":
                    await stream.close()
            await streams["error"].write(encode_status(status, protocol == V4))
            await streams["error"].close()
        except (StreamReset, ConnectionError, OSError):
            return
        try:
            await asyncio.wait_for(conn.closed.wait(), HANGUP_GRACE)
        except asyncio.TimeoutError:
            await conn.goaway()
    finally:
        conn.close()
        for task in (late, reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
