"""The shim over conmon + an OCI runtime (runc): one conmon per task and per exec."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal as _signal
from typing import Any

from runtime.errors import FailedPrecondition, NotFound
from runtime.stdio import attach
from runtime.tasks import conmon, exits
from runtime.tasks.runc import Runc
from runtime.tasks.shim import ProcessIO, ProcessPaths, RuntimeBinary


class ConmonShim:
    def __init__(self, name: str, runtime_path: str, runc_root: str, conmon_path: str = conmon.CONMON, *,
                 log_size_max: int = 0, version: str = "") -> None:
        self.name = name
        self.version = version
        self._log_size_max = log_size_max
        self._runtime_path = runtime_path
        self._runc_root = runc_root
        self._conmon_path = conmon_path
        self._default = Runc(runc_root, runtime_path, fifo_start=name == "runc")
        # Tasks created with a binary of their own: every command of theirs goes through it.
        self._own: dict[str, Runc] = {}
        self._pending: dict[tuple[str, str], conmon.PendingExec] = {}

    def _runc(self, task_id: str) -> Runc:
        return self._own.get(task_id, self._default)

    def adopt(self, task_id: str, binary: RuntimeBinary) -> None:
        self._own[task_id] = Runc(self._runc_root, binary.path, binary.args)

    async def create(self, task_id: str, paths: ProcessPaths, *, terminal: bool, stdin: bool,
                     keep_stdin_open: bool = False, binary: RuntimeBinary | None = None) -> int:
        path, args = (binary.path, binary.args) if binary else (self._runtime_path, ())
        p = await conmon.create_task(
            task_id, paths.bundle, runc_root=self._runc_root, state_dir=paths.state_dir, log_path=paths.log_path,
            exit_dir=paths.exit_dir, terminal=terminal, stdin=stdin, leave_stdin_open=keep_stdin_open,
            runtime_path=path, runtime_args=args, conmon_path=self._conmon_path, log_size_max=self._log_size_max,
        )
        if binary is not None:
            self.adopt(task_id, binary)
        return p.pid

    async def start(self, task_id: str, init_pid: int) -> None:
        await self._runc(task_id).start(task_id, init_pid)

    async def prepare_exec(self, task_id: str, exec_id: str, process: dict[str, Any], paths: ProcessPaths, *,
                           terminal: bool, stdin: bool) -> None:
        runc = self._runc(task_id)
        self._pending[(task_id, exec_id)] = await conmon.create_exec(
            task_id, exec_id, process, runc_root=self._runc_root, state_dir=paths.state_dir, terminal=terminal,
            stdin=stdin, runtime_path=runc.binary, runtime_args=runc.args, conmon_path=self._conmon_path,
        )

    async def start_exec(self, task_id: str, exec_id: str) -> int:
        pending = self._pending.pop((task_id, exec_id), None)
        if pending is None:
            raise FailedPrecondition(f"exec {exec_id} is not ready to start (was the runtime restarted?)")
        return (await pending.start()).pid

    def abort_exec(self, task_id: str, exec_id: str) -> None:
        pending = self._pending.pop((task_id, exec_id), None)
        if pending is not None:
            pending.abort()

    async def kill(self, task_id: str, signal: int, all: bool = False) -> None:
        await self._runc(task_id).kill(task_id, signal, all=all)

    async def kill_pid(self, pid: int, signal: int) -> None:
        try:
            os.kill(pid, _signal.Signals(signal))
        except ProcessLookupError:
            raise NotFound(f"process {pid} has exited") from None

    async def delete(self, task_id: str, force: bool = False) -> None:
        await self._runc(task_id).delete(task_id, force=force)
        self._own.pop(task_id, None)

    async def sweep(self, known: set[str]) -> list[str]:
        if not os.path.isdir(self._runc_root):
            return []
        orphans = [c["id"] for c in await self._default.list() if c.get("id") not in known]
        for cid in orphans:
            await self._default.delete(cid, force=True)
        return orphans

    async def pause(self, task_id: str) -> None:
        await self._runc(task_id).pause(task_id)

    async def resume(self, task_id: str) -> None:
        await self._runc(task_id).resume(task_id)

    async def update(self, task_id: str, resources: dict[str, Any]) -> None:
        await self._runc(task_id).update(task_id, resources)

    async def pids(self, task_id: str) -> list[int]:
        return await self._runc(task_id).ps(task_id)

    def io(self, paths: ProcessPaths, exec: bool) -> ProcessIO:
        # conmon binds attach/ctl in its -b directory: the bundle for a task, the state dir for an exec.
        where = paths.state_dir if exec else paths.bundle
        return ProcessIO(attach_socket=os.path.join(where, conmon.ATTACH_SOCKET),
                         ctl=os.path.join(where, conmon.CTL_FIFO), log_path=paths.log_path)

    async def resize(self, io: ProcessIO, rows: int, cols: int) -> None:
        await attach.resize(io.ctl, rows, cols)

    @staticmethod
    def _exit_files(process_id: str, paths: ProcessPaths, exec: bool) -> list[str]:
        state = os.path.join(paths.state_dir, exits.EXIT_FILE)
        return [state] if exec else [os.path.join(paths.exit_dir, process_id), state]

    def exit_code(self, process_id: str, paths: ProcessPaths, exec: bool) -> int | None:
        for path in self._exit_files(process_id, paths, exec):
            if (code := exits.read_exit_file(path)) is not None:
                return code
        return None

    def exited_at(self, process_id: str, paths: ProcessPaths, exec: bool) -> float | None:
        for path in self._exit_files(process_id, paths, exec):
            with contextlib.suppress(OSError):
                return os.stat(path).st_mtime
        return None

    async def wait_monitor(self, paths: ProcessPaths) -> None:
        pidfile = os.path.join(paths.state_dir, exits.CONMON_PIDFILE)
        pid = exits.read_pidfile(pidfile)
        if pid is not None:
            await exits.wait_gone(pid, pidfile)

    def monitor_alive(self, paths: ProcessPaths) -> bool:
        pidfile = os.path.join(paths.state_dir, exits.CONMON_PIDFILE)
        pid = exits.read_pidfile(pidfile)
        return pid is not None and exits.is_conmon(pid, pidfile)


class Unusable(Exception):
    """Why an OCI runtime cannot work here."""


async def probe(runtime_path: str) -> str:
    """The OCI runtime's version as dockerd reports it (the `commit:` line of `--version`, else its first line);
    Unusable if it cannot run."""
    if not os.access(runtime_path, os.X_OK):
        raise Unusable(f"{runtime_path} is not installed")
    proc = await asyncio.create_subprocess_exec(runtime_path, "--version", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace").strip()
    if proc.returncode != 0:
        raise Unusable(f"{runtime_path} --version failed: {text}")
    lines = text.splitlines()
    commits = [line.partition(":")[2].strip() for line in lines if line.startswith("commit:")]
    return commits[0] if commits else lines[0] if lines else ""
