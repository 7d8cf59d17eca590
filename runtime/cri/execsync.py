"""ExecSync: run a command in a container and hand back its output and exit code (the kubelet's exec probes).

The exec's monitor holds the process back until we are attached, so no byte of its output is lost;
output past a bound is cut, as the kubelet's own limit for probe output does, so a chatty probe cannot
fill the daemon's memory. A timeout kills the command and answers DEADLINE_EXCEEDED.
"""
from __future__ import annotations

import asyncio
import secrets
import signal

import grpc

from runtime.cri.errors import register
from runtime.cri.scope import in_namespace
from runtime.cri.state import CRIState
from runtime.errors import FailedPrecondition, InvalidArgument, RuntimeError_
from runtime.stdio.attach import STDOUT, Attachment
from runtime.tasks.service import ExecCreate
from runtime.tasks.state import Status

MAX_OUTPUT = 16 * 1024 * 1024


class DeadlineExceeded(RuntimeError_):
    """The command outran its timeout (gRPC DEADLINE_EXCEEDED, which the kubelet reads as a probe timeout)."""


async def exec_sync(state: CRIState, container_id: str, cmd: list[str], timeout: int) -> tuple[bytes, bytes, int]:
    if not cmd:
        raise InvalidArgument("exec needs a command")
    record = state.cri_containers.get(container_id)
    t = state.task(record.id)
    if t is None or t.status != Status.RUNNING:
        raise FailedPrecondition(f"container {record.id} is not running")
    exec_id = "execsync-" + secrets.token_hex(8)
    out = bytearray()
    err = bytearray()
    with in_namespace(state.namespace):
        await state.tasks.add_exec(record.id, ExecCreate(exec_id=exec_id, args=list(cmd)))
        try:
            io = state.tasks.io(record.id, exec_id)
            async with await Attachment.connect(io.attach_socket) as attachment:
                attachment.close_stdin()
                await state.tasks.start_exec(record.id, exec_id)

                async def collect() -> int:
                    async for fd, chunk in attachment:
                        target = out if fd == STDOUT else err
                        if len(target) < MAX_OUTPUT:
                            target.extend(chunk[: MAX_OUTPUT - len(target)])
                    return (await state.tasks.wait(record.id, exec_id)).exit_status

                try:
                    code = await asyncio.wait_for(collect(), timeout) if timeout > 0 else await collect()
                except asyncio.TimeoutError:
                    try:
                        await state.tasks.kill(record.id, signal.SIGKILL, exec_id=exec_id)
                    except FailedPrecondition:
                        pass
                    raise DeadlineExceeded(f"command {cmd!r} timed out after {timeout}s") from None
        finally:
            try:
                # An exec that never started (its program missing, say) has no exit to wait for.
                e = state.tasks.get(record.id).execs.get(exec_id)
                if e is not None and e.status != Status.CREATED:
                    await state.tasks.wait(record.id, exec_id)
                await state.tasks.delete_exec(record.id, exec_id)
            except RuntimeError_:
                pass
    return bytes(out), bytes(err), code


register(DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED)
