"""The runtime shim interface: how the task service starts and controls processes.

One implementation exists (conmon supervising an OCI runtime:
runtime/tasks/conmon_shim.py); the Protocol keeps the task service independent
of it, as containerd's shim API keeps containerd independent of runc.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.errors import InvalidArgument


@dataclass(frozen=True)
class ProcessPaths:
    """Where one supervised process keeps its monitor's files, stdio and exit code."""

    bundle: str            # the task's bundle (config.json, rootfs)
    state_dir: str         # the monitor's own files for this process
    exit_dir: str          # for a task: the monitor writes <exit_dir>/<task id>
    log_path: str | None   # the task's stdout/stderr log (execs have none)


@dataclass(frozen=True)
class RuntimeBinary:
    """A runc-compatible binary a task runs with in place of its runtime's own, `args` before each command."""

    path: str
    args: tuple[str, ...] = ()


def runtime_binary(path: str | None, args: list[str]) -> RuntimeBinary | None:
    """A task's own binary, checked before anything is made: an absolute path or a name found in PATH, as the
    runc shim looks its BinaryName up."""
    if path is None:
        if args:
            raise InvalidArgument("runtime_args need a runtime_binary")
        return None
    found = shutil.which(path) if "/" not in path else path
    if not found or not os.path.isabs(found) or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise InvalidArgument(f"runtime binary {path!r}: no such executable file (an absolute path or a name in PATH)")
    return RuntimeBinary(found, tuple(args))


@dataclass(frozen=True)
class ProcessIO:
    """What a client needs to attach: the monitor's socket, control fifo and log."""

    attach_socket: str
    ctl: str
    log_path: str | None


class Shim(Protocol):
    name: str
    version: str  # the OCI runtime's, as dockerd reports runc's

    async def create(self, task_id: str, paths: ProcessPaths, *, terminal: bool, stdin: bool,
                     keep_stdin_open: bool = False, binary: RuntimeBinary | None = None) -> int:
        """Create the container's init process, stopped before exec; returns its pid.

        Its stdin closes when an attached client leaves, unless `keep_stdin_open`. With `binary`, that binary
        runs every command of this task (until delete) in place of the shim's own.
        """
        ...

    def adopt(self, task_id: str, binary: RuntimeBinary) -> None:
        """After a restart: a recovered task created with its own binary goes on with it."""
        ...

    async def start(self, task_id: str, init_pid: int) -> None: ...

    async def prepare_exec(self, task_id: str, exec_id: str, process: dict[str, Any], paths: ProcessPaths, *,
                           terminal: bool, stdin: bool) -> None:
        """Get an extra process ready: its stdio can be attached before start_exec runs it."""
        ...

    async def start_exec(self, task_id: str, exec_id: str) -> int: ...

    def abort_exec(self, task_id: str, exec_id: str) -> None: ...

    async def kill(self, task_id: str, signal: int, all: bool = False) -> None: ...

    async def kill_pid(self, pid: int, signal: int) -> None: ...

    async def delete(self, task_id: str, force: bool = False) -> None: ...

    async def pause(self, task_id: str) -> None: ...

    async def resume(self, task_id: str) -> None: ...

    async def update(self, task_id: str, resources: dict[str, Any]) -> None:
        """Apply OCI `linux.resources` limits to the running container."""
        ...

    async def sweep(self, known: set[str]) -> list[str]:
        """Remove the OCI runtime's containers no task knows (a runtime killed mid-create leaves them)."""
        ...

    async def pids(self, task_id: str) -> list[int]: ...

    def io(self, paths: ProcessPaths, exec: bool) -> ProcessIO: ...

    async def resize(self, io: ProcessIO, rows: int, cols: int) -> None: ...

    def exit_code(self, process_id: str, paths: ProcessPaths, exec: bool) -> int | None:
        """The recorded exit code, or None while the process has not exited."""
        ...

    def exited_at(self, process_id: str, paths: ProcessPaths, exec: bool) -> float | None:
        """When the exit code was recorded (the process's end, for an exit found later), if it was."""
        ...

    def monitor_alive(self, paths: ProcessPaths) -> bool: ...

    async def wait_monitor(self, paths: ProcessPaths) -> None:
        """Return once the process's monitor has exited (its exit code is recorded by then)."""
        ...
