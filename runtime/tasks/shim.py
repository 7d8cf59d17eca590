"""The runtime shim interface: how the task service starts and controls processes.

One implementation exists (conmon supervising an OCI runtime:
runtime/tasks/conmon_shim.py); the Protocol keeps the task service independent
of it, as containerd's shim API keeps containerd independent of runc.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ProcessPaths:
    """Where one supervised process keeps its monitor's files, stdio and exit code."""

    bundle: str            # the task's bundle (config.json, rootfs)
    state_dir: str         # the monitor's own files for this process
    exit_dir: str          # for a task: the monitor writes <exit_dir>/<task id>
    log_path: str | None   # the task's stdout/stderr log (execs have none)


@dataclass(frozen=True)
class ProcessIO:
    """What a client needs to attach: the monitor's socket, control fifo and log."""

    attach_socket: str
    ctl: str
    log_path: str | None


class Shim(Protocol):
    name: str

    async def create(self, task_id: str, paths: ProcessPaths, *, terminal: bool, stdin: bool,
                     keep_stdin_open: bool = False) -> int:
        """Create the container's init process, stopped before exec; returns its pid.

        Its stdin closes when an attached client leaves, unless `keep_stdin_open`.
        """
        ...

    async def start(self, task_id: str) -> None: ...

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

    def monitor_alive(self, paths: ProcessPaths) -> bool: ...

    async def wait_monitor(self, paths: ProcessPaths) -> None:
        """Return once the process's monitor has exited (its exit code is recorded by then)."""
        ...
