"""The streaming server's backend on the runtime's tasks: exec and attach through conmon, port-forward
by dialling inside the pod's network namespace.

An exec's monitor holds the process until we are attached, so no output is lost; a client that goes
away cancels the call, and a still-running exec is then killed (the kubelet leaves them; a command
nobody can see or stop is worse). Attach only detaches.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Callable

from cri_api.v1 import api_pb2 as cri

from runtime.cri.scope import in_namespace
from runtime.cri.state import CRIState
from runtime.cri.streaming import backend as sb
from runtime.cri.streaming.server import InvalidStreamingRequest, StreamingServer
from runtime.errors import FailedPrecondition, InvalidArgument, RuntimeError_
from runtime.stdio.attach import STDERR, Attachment
from runtime.tasks.service import ExecCreate
from runtime.tasks.state import Status

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _dial_in_netns(netns: str, port: int) -> socket.socket:
    """A connected socket made inside `netns` (a thread's namespace switch; the socket keeps it)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns}")
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        finally:
            if _libc.setns(own, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the runtime's namespace")
    finally:
        os.close(own)
        os.close(target)
    sock.settimeout(None)
    sock.setblocking(False)
    return sock


class TaskStreams:
    def __init__(self, state: CRIState) -> None:
        self._s = state

    def _running(self, container_id: str) -> str:
        record = self._s.cri_containers.get(container_id)
        t = self._s.task(record.id)
        if t is None or t.status != Status.RUNNING:
            raise FailedPrecondition(f"container {record.id} is not running")
        return record.id

    async def _copy(self, attachment: Attachment, tty: bool, stdin: sb.InputStream | None,
                    stdout: sb.OutputStream | None, stderr: sb.OutputStream | None,
                    resize: AsyncIterator[sb.TerminalSize] | None, container_id: str,
                    exec_id: str | None) -> None:
        async def pump_stdin() -> None:
            assert stdin is not None
            while data := await stdin.read():
                await attachment.write(data)
            attachment.close_stdin()

        async def resizes() -> None:
            assert resize is not None
            async for size in resize:
                with in_namespace(self._s.namespace), contextlib.suppress(RuntimeError_):
                    await self._s.tasks.resize(container_id, size.height, size.width, exec_id)

        helpers = []
        if stdin is not None:
            helpers.append(asyncio.ensure_future(pump_stdin()))
        if resize is not None and tty:
            helpers.append(asyncio.ensure_future(resizes()))
        try:
            async for fd, chunk in attachment:
                target = stderr if fd == STDERR and not tty else stdout
                if target is not None:
                    await target.write(chunk)
        finally:
            for h in helpers:
                h.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def exec(self, container_id: str, cmd: list[str], tty: bool, stdin: sb.InputStream | None,
                   stdout: sb.OutputStream | None, stderr: sb.OutputStream | None,
                   resize: AsyncIterator[sb.TerminalSize] | None) -> int:
        cid = self._running(container_id)
        exec_id = "exec-" + secrets.token_hex(8)
        tasks = self._s.tasks
        with in_namespace(self._s.namespace):
            # containerd's CRI gives a terminal TERM=xterm, over the container's own.
            await tasks.add_exec(cid, ExecCreate(exec_id=exec_id, args=list(cmd), terminal=tty,
                                                 stdin=stdin is not None, env=["TERM=xterm"] if tty else []))
            try:
                attachment = await Attachment.connect(tasks.io(cid, exec_id).attach_socket)
                async with attachment:
                    await tasks.start_exec(cid, exec_id)
                    await self._copy(attachment, tty, stdin, stdout, stderr, resize, cid, exec_id)
                    return (await tasks.wait(cid, exec_id)).exit_status
            finally:
                with contextlib.suppress(RuntimeError_):
                    e = tasks.get(cid).execs.get(exec_id)
                    if e is not None and e.status == Status.RUNNING:
                        await tasks.kill(cid, signal.SIGKILL, exec_id=exec_id)
                    if e is not None and e.status != Status.CREATED:
                        await asyncio.shield(tasks.wait(cid, exec_id))
                    await tasks.delete_exec(cid, exec_id)

    async def attach(self, container_id: str, tty: bool, stdin: sb.InputStream | None,
                     stdout: sb.OutputStream | None, stderr: sb.OutputStream | None,
                     resize: AsyncIterator[sb.TerminalSize] | None) -> None:
        cid = self._running(container_id)
        config = self._s.cri_containers.get(cid).container_config()
        if stdin is not None and not config.stdin:
            raise InvalidArgument(f"container {cid} was not created with stdin: nothing to attach it to")
        with in_namespace(self._s.namespace):
            attachment = await Attachment.connect(self._s.tasks.io(cid).attach_socket)
        async with attachment:
            await self._copy(attachment, tty, stdin, stdout, stderr, resize, cid, None)

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        record = self._s.sandboxes.get(sandbox_id)
        if not record.netns or record.stopped:
            if record.stopped:
                raise FailedPrecondition(f"sandbox {record.id} is not ready")
            return await asyncio.open_connection("127.0.0.1", port)
        sock = await asyncio.to_thread(_dial_in_netns, record.netns, port)
        return await asyncio.open_connection(sock=sock)


class StreamURLAdapter:
    """The CRI's Exec/Attach/PortForward requests as the streaming server's one-time URLs."""

    def __init__(self, server: StreamingServer) -> None:
        self._server = server

    def exec_url(self, r: cri.ExecRequest) -> str:
        return self._call(lambda: self._server.get_exec(sb.ExecRequest(
            container_id=r.container_id, cmd=list(r.cmd), tty=r.tty, stdin=r.stdin, stdout=r.stdout,
            stderr=r.stderr)))

    def attach_url(self, r: cri.AttachRequest) -> str:
        return self._call(lambda: self._server.get_attach(sb.AttachRequest(
            container_id=r.container_id, tty=r.tty, stdin=r.stdin, stdout=r.stdout, stderr=r.stderr)))

    def port_forward_url(self, r: cri.PortForwardRequest) -> str:
        return self._call(lambda: self._server.get_port_forward(sb.PortForwardRequest(
            sandbox_id=r.pod_sandbox_id, ports=list(r.port))))

    @staticmethod
    def _call(make: Callable[[], str]) -> str:
        try:
            return make()
        except InvalidStreamingRequest as e:
            raise InvalidArgument(str(e)) from None
