"""Async wrapper of the runc CLI.

runc runs with `--log-format json` so its stderr is one JSON object per line: the last
error's `msg` becomes the message of a typed error (see `error_for`). Every call is a
subprocess; nothing here keeps state beyond the binary and the `--root` state dir.
"""
from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from runtime import telemetry
from runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    RuntimeError_,
    Unavailable,
)
from runtime.tasks import exec_fifo
from runtime.tasks.exec_fifo import FIFO

RUNC = "/usr/sbin/runc"

_tracer = telemetry.tracer("runtime.tasks.runc")

# runc's messages for an operation the container's current state does not allow.
_PRECONDITION = (
    "not running",
    "not paused",
    "not stopped",
    "is paused",
    "is stopped",
    "is running",
    "cannot ",
)

# runc's checks on the values it is given (a relative cwd, cpu.shares past the kernel's bounds): the caller's fault.
_BAD_VALUE = (
    "must be an absolute path",
    "must not be empty",
    "the maximum allowed",
    "the minimum allowed",
)


def error_for(message: str) -> RuntimeError_:
    """Map a runc error message to the runtime's typed error."""
    low = message.lower()
    if "does not exist" in low:
        return NotFound(message)
    if "already exists" in low:
        return AlreadyExists(message)
    # A create that fails inside the container's init is almost always the spec's fault
    # (missing executable, impossible mount, tty mismatch); keep runc's words for the caller.
    if "runc create failed" in low or "unable to start container process" in low:
        return InvalidArgument(message)
    if any(p in low for p in _BAD_VALUE):
        return InvalidArgument(message)
    if any(p in low for p in _PRECONDITION):
        return FailedPrecondition(message)
    if "invalid" in low:
        return InvalidArgument(message)
    return Internal(message)


def error_message(stderr: str) -> str:
    """The last error runc logged (JSON log format), or its raw stderr."""
    msg = ""
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal") and entry.get("msg"):
            msg = str(entry["msg"])
    return msg or stderr.strip() or "runc failed without a message"


class Runc:
    def __init__(self, root: str, binary: str = RUNC, args: tuple[str, ...] = (), timeout: float = 30.0, *,
                 fifo_start: bool = False) -> None:
        self.root = root
        self.binary = binary
        self.args = args  # global options before each command, ahead of runc's own
        # Whether `binary` is runc itself, whose created containers wait at an exec fifo (see start()).
        self.fifo_start = fifo_start
        # runc blocks on a frozen or wedged cgroup; never let that hang a caller forever.
        self.timeout = timeout

    async def _run(self, *args: str, input: bytes | None = None) -> bytes:
        with telemetry.step(_tracer, f"runc {args[0]}", **{"runc.args": " ".join(args)}):
            return await self._exec(*args, input=input)

    async def _exec(self, *args: str, input: bytes | None = None) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            self.binary, *self.args, "--root", self.root, "--log-format", "json", *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise Unavailable(f"runc {args[0]} timed out after {self.timeout:g}s") from None
        if proc.returncode != 0:
            raise error_for(error_message(err.decode(errors="replace")))
        return out

    async def state(self, id: str) -> dict[str, Any]:
        """runc's state of a container: id, pid, status (created|running|paused|stopped), bundle..."""
        state: dict[str, Any] = json.loads(await self._run("state", id))
        return state

    async def start(self, id: str, init_pid: int | None = None) -> None:
        """Run the created container's process. Knowing its init's pid, and being runc itself (not a
        runc-compatible binary whose state may differ), this releases the init at its exec fifo in place of a
        `runc start` process (exec_fifo.py)."""
        if self.fifo_start and init_pid is not None and init_pid > 0:
            with telemetry.step(_tracer, "runc start", **{"runc.args": f"start {id}", "runc.via": FIFO}):
                try:
                    if await asyncio.wait_for(exec_fifo.release(os.path.join(self.root, id), init_pid),
                                              self.timeout):
                        return
                except TimeoutError:
                    raise Unavailable(f"runc start timed out after {self.timeout:g}s") from None
        await self._run("start", id)

    async def kill(self, id: str, signal: int, all: bool = False) -> None:
        await self._run("kill", *(["--all"] if all else []), id, str(signal))

    async def delete(self, id: str, force: bool = False) -> None:
        """Remove the container (and the cgroups runc made); a container already gone is fine."""
        try:
            await self._run("delete", *(["--force"] if force else []), id)
        except NotFound:
            pass

    async def pause(self, id: str) -> None:
        await self._run("pause", id)

    async def resume(self, id: str) -> None:
        await self._run("resume", id)

    async def ps(self, id: str) -> list[int]:
        """Host pids of every process in the container's cgroup."""
        return [int(p) for p in json.loads(await self._run("ps", "--format", "json", id)) or []]

    async def events_stats(self, id: str) -> dict[str, Any]:
        """One `runc events --stats` sample: the `data` part (cpu, memory, pids, blkio...)."""
        event = json.loads(await self._run("events", "--stats", id))
        return event.get("data") or {}

    async def list(self) -> list[dict[str, Any]]:
        return json.loads(await self._run("list", "--format", "json")) or []

    async def update(self, id: str, resources: dict[str, Any]) -> None:
        """Apply OCI `linux.resources` (memory, cpu, pids, blockIO) to a live container."""
        await self._run("update", "--resources", "-", id, input=json.dumps(resources).encode())
