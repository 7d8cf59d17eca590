"""Tasks: running containers, supervised through a shim (conmon + runc).

State lives on disk in each task's state dir, so a restarted runtime recovers
every task: live monitors are watched again, and a task that exited while the
runtime was down is reported stopped with its real exit code and a (late)
/tasks/exit event. Exits are collected by the ExitWatcher (exit_watcher.py); the
tasks, their locks and their files are in the TaskTable (task_table.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RuntimeError_,
)
from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.metadata.containers import Container, ContainerStore
from runtime.metadata.snapshots import SnapshotService
from runtime.mount import Mount, mount_all
from runtime.namespaces import require_namespace, reset_namespace, set_namespace
from runtime.tasks import cgroups, start_user
from runtime.tasks.exec_diagnosis import diagnose
from runtime.tasks.exit_watcher import POLL, ExitWatcher
from runtime.tasks.shim import ProcessIO, RuntimeBinary, Shim, runtime_binary
from runtime.tasks.spec_options import ResourceOptions
from runtime.tasks.spec_process import merge_env
from runtime.tasks.spec_resources import linux_resources
from runtime.tasks.spec_security import host_capabilities
from runtime.tasks.state import ExecState, ProcessState, Status, TaskState
from runtime.tasks.task_table import TaskTable
from runtime.tasks.users import resolve_user

log = logging.getLogger("runtime.tasks")


class ExecCreate(BaseModel):
    exec_id: str
    args: list[str]
    env: list[str] = []
    cwd: str | None = None
    user: str | None = None
    # With `user`: the groups beside the user's own (the container's `--group-add`, as Docker gives an exec).
    additional_gids: list[str | int] = []
    terminal: bool = False
    # [height, width] of the terminal from the start: runc sizes the pty it makes before the process runs.
    console_size: tuple[int, int] | None = None
    stdin: bool = False
    # Every capability runc can grant here, whatever the container's own set (`docker exec --privileged`).
    privileged: bool = False
    # False: `env` is the whole environment (a client that computes it, as dockerd does), not variables over the
    # task's; HOME is then the exec user's unless `env` names it.
    inherit_env: bool = True


class ExitStatus(BaseModel):
    exit_status: int
    exited_at: float
    # The task's cgroup saw an OOM kill (of its init or an exec): told with the task's own status, so a
    # caller cleaning up after an exit needs no second request to learn it.
    oom_killed: bool = False


class TaskService:
    def __init__(self, root: Path, state: Path, containers: ContainerStore, snapshots: dict[str, SnapshotService],
                 shims: dict[str, Shim], events: Exchange) -> None:
        self._table = TaskTable(root, state)
        self._containers = containers
        self._snapshots = snapshots
        self._shims = shims
        self._events = events
        self._exits = ExitWatcher(self._table, shims, events)
        # Each task's process as its bundle has it, which every exec starts from: read once, not per exec.
        self._processes: dict[tuple[str, str], dict[str, Any]] = {}

    def runtime_versions(self) -> dict[str, str]:
        """Each loaded OCI runtime's version, by name."""
        return {name: shim.version for name, shim in self._shims.items()}

    def task_dir(self, ns: str, task_id: str) -> Path:
        """The task's bundle: its live rootfs is the `rootfs` dir in it."""
        return self._table.task_dir(ns, task_id)

    # lifecycle -----------------------------------------------------------

    async def start_watching(self) -> None:
        await self.recover()
        await self._sweep()
        self._exits.start()

    async def close(self) -> None:
        await self._exits.close()

    async def create(self, container_id: str, *, terminal: bool | None = None, stdin: bool = False,
                     keep_stdin_open: bool = False, env: list[str] | None = None,
                     log_path: str | None = None, binary: str | None = None,
                     binary_args: list[str] | None = None) -> TaskState:
        """`log_path`: an absolute path for the output log in place of the runtime's own (the CRI's pod logs).
        `binary`: a runc-compatible binary (path or a name in PATH) for this task in place of its runtime's own,
        `binary_args` before each of its commands."""
        if keep_stdin_open and not stdin:
            raise InvalidArgument("keep_stdin_open needs stdin")
        binary_of_task = runtime_binary(binary, binary_args or [])
        if log_path is not None and not log_path.startswith("/"):
            raise InvalidArgument(f"log path {log_path!r} is not absolute")
        ns = require_namespace()
        key = (ns, container_id)
        async with self._table.lock(key):
            if key in self._table.tasks:
                raise AlreadyExists(f"task {container_id} already exists")
            c = await self._containers.get(container_id)
            shim = self._shim(c)
            process = c.spec.get("process", {})
            if terminal is None:
                terminal = bool(process.get("terminal"))
            own = {e.split("=", 1)[0] for e in process.get("env", [])}
            # Only the process changes: a copy of it, not of the whole spec (its seccomp profile is most of it).
            spec = {**c.spec, "process": {
                **process, "terminal": terminal,
                "env": [*process.get("env", []), *(e for e in env or [] if "=" in e and e.split("=", 1)[0] not in own)],
            }}
            d = self._table.task_dir(ns, container_id)
            mounts = await self._snapshots[c.snapshotter].mounts(c.snapshot_key)
            mounted = [str(m.get("destination", "")) for m in spec.get("mounts") or []]
            # runc would report only the errno of a doomed exec, from inside the container; said here
            # with its cause, before anything runs.
            doomed = await asyncio.to_thread(self._bundle, d, spec, mounts,
                                             Path(log_path or self._table.log_path(ns, container_id)), mounted)
            t = TaskState(id=container_id, namespace=ns, runtime=c.runtime, terminal=terminal, stdin=stdin,
                          runtime_binary=binary_of_task.path if binary_of_task else None,
                          runtime_args=list(binary_of_task.args) if binary_of_task else [],
                          keep_stdin_open=keep_stdin_open, created_at=time.time(),
                          cgroups_path=spec.get("linux", {}).get("cgroupsPath"), rootfs=str(d / "rootfs"),
                          log_path=log_path)
            paths = self._table.paths(ns, container_id, log_path=log_path)
            try:
                if doomed is not None:
                    raise InvalidArgument(doomed)
                t.pid = await shim.create(container_id, paths, terminal=terminal, stdin=stdin,
                                          keep_stdin_open=keep_stdin_open, binary=binary_of_task)
            except BaseException:
                await asyncio.to_thread(self._table.cleanup_dir, d)
                if log_path is None:
                    await asyncio.to_thread(_drop_if_empty, self._table.log_path(ns, container_id))
                raise
            self._table.save(t)
            self._table.tasks[key] = t
            self._processes[key] = spec["process"]
            self._exits.forget((ns, container_id, container_id))
        self._events.publish(ns, topics.TASK_CREATE, {"container_id": container_id, "pid": t.pid,
                                                      "terminal": terminal})
        return t

    def _bundle(self, d: Path, spec: dict[str, Any], mounts: list[Mount], log: Path, mounted: list[str]) -> str | None:
        """Lay out a task's bundle in `d` (its config, its rootfs mounted) and the log's directory; why the
        process cannot be executed, if it cannot. One worker call: each hop to a thread costs the start."""
        if d.exists():
            self._table.remove_dir(d)
        try:
            (d / "rootfs").mkdir(parents=True)
            (d / "exits").mkdir()
            log.parent.mkdir(parents=True, exist_ok=True)
            mount_all(mounts, str(d / "rootfs"))
            if (wanted := (spec.get("annotations") or {}).get(start_user.ANNOTATION)) is not None:
                try:
                    start_user.apply(spec["process"], str(d / "rootfs"), wanted)
                except InvalidArgument as e:
                    return e.message
            (d / "config.json").write_text(json.dumps(spec))
        except BaseException:
            self._table.cleanup_dir(d)
            raise
        return diagnose(str(d / "rootfs"), spec["process"], mounted)

    async def start(self, task_id: str) -> TaskState:
        t = self._table.get(task_id)
        async with self._table.lock((t.namespace, task_id)):
            if t.status != Status.CREATED:
                raise FailedPrecondition(f"cannot start task {task_id}: it is {t.status.value}")
            await self._shims[t.runtime].start(task_id, t.pid)
            t.transition("start", Status.RUNNING)
            t.started_at = time.time()
            self._table.save(t)
            # Published under the lock the exit watcher respects: /tasks/start always precedes /tasks/exit.
            self._events.publish(t.namespace, topics.TASK_START, {"container_id": task_id, "pid": t.pid})
        self._exits.follow(t)
        await self._exits.oom.watch(t)
        return t

    async def kill(self, task_id: str, signal: int, all: bool = False, exec_id: str | None = None) -> None:
        t = self._table.get(task_id)
        if not 0 < signal < 65:
            raise InvalidArgument(f"invalid signal {signal}")
        if exec_id:
            e = self._exec(t, exec_id)
            if e.status != Status.RUNNING:
                raise FailedPrecondition(f"exec {exec_id} is not running")
            await self._shims[t.runtime].kill_pid(e.pid, signal)
            return
        if t.status == Status.STOPPED:
            raise FailedPrecondition(f"cannot kill task {task_id}: it is stopped")
        await self._shims[t.runtime].kill(task_id, signal, all=all)

    async def wait(self, task_id: str, exec_id: str | None = None) -> ExitStatus:
        t = self._table.get(task_id)
        p: ProcessState = self._exec(t, exec_id) if exec_id else t
        await self._exits.exited((t.namespace, task_id, exec_id or task_id)).wait()
        assert p.exit_status is not None and p.exited_at is not None
        return ExitStatus(exit_status=p.exit_status, exited_at=p.exited_at, oom_killed=p is t and t.oom_killed)

    async def delete(self, task_id: str, force: bool = False) -> ExitStatus:
        t = self._table.get(task_id)
        key = (t.namespace, task_id)
        async with self._table.lock(key):
            shim = self._shims[t.runtime]
            if t.status in (Status.RUNNING, Status.PAUSED):
                if not force:
                    raise FailedPrecondition(f"cannot delete task {task_id}: it is {t.status.value}")
                await shim.kill(task_id, 9, all=True)
                # The watcher skips locked tasks, so the exit is collected here.
                paths = self._table.paths(t.namespace, task_id)
                while (code := shim.exit_code(task_id, paths, exec=False)) is None and shim.monitor_alive(paths):
                    await asyncio.sleep(POLL)
                self._exits.record(t, t, 137 if code is None else code)
            for e in t.execs.values():
                # Killed with the task, and watched no more once it is gone: their waiters learn it now.
                code = shim.exit_code(e.id, self._table.paths(t.namespace, task_id, e.id), exec=True)
                self._exits.record(t, e, 137 if code is None else code)
            self._exits.oom.unwatch(t)
            await shim.delete(task_id, force=True)
            await asyncio.to_thread(self._table.cleanup_dir, self._table.task_dir(t.namespace, task_id))
            if t.cgroups_path:
                await asyncio.to_thread(cgroups.remove_cgroup, t.cgroups_path)
            self._table.tasks.pop(key, None)
            self._table.locks.pop(key, None)
            self._processes.pop(key, None)
        status = ExitStatus(exit_status=t.exit_status if t.exit_status is not None else 255,
                            exited_at=t.exited_at or time.time(), oom_killed=t.oom_killed)
        self._events.publish(t.namespace, topics.TASK_DELETE, {"container_id": task_id, "pid": t.pid,
                                                               **status.model_dump()})
        return status

    async def pause(self, task_id: str) -> None:
        t = self._table.get(task_id)
        async with self._table.lock((t.namespace, task_id)):
            if t.status != Status.RUNNING:
                raise FailedPrecondition(f"cannot pause task {task_id}: it is {t.status.value}")
            await self._shims[t.runtime].pause(task_id)
            t.transition("pause", Status.PAUSED)
            self._table.save(t)
        self._events.publish(t.namespace, topics.TASK_PAUSED, {"container_id": task_id})

    async def resume(self, task_id: str) -> None:
        t = self._table.get(task_id)
        async with self._table.lock((t.namespace, task_id)):
            if t.status != Status.PAUSED:
                raise FailedPrecondition(f"cannot resume task {task_id}: it is {t.status.value}")
            await self._shims[t.runtime].resume(task_id)
            t.transition("resume", Status.RUNNING)
            self._table.save(t)
        self._events.publish(t.namespace, topics.TASK_RESUMED, {"container_id": task_id})

    async def update(self, task_id: str, resources: ResourceOptions) -> None:
        """Apply new cgroup limits to the live task (the container's stored spec is the caller's to change)."""
        t = self._table.get(task_id)
        limits = linux_resources(resources)
        if resources.pids_limit is not None and resources.pids_limit <= 0:
            # runc keeps whatever an update leaves out: lifting the limit has to be said.
            limits["pids"] = {"limit": -1}
        async with self._table.lock((t.namespace, task_id)):
            if t.status == Status.STOPPED:
                raise FailedPrecondition(f"cannot update task {task_id}: it is stopped")
            await self._shims[t.runtime].update(task_id, limits)
        log.info("task=%s resources updated: %s", task_id, limits)

    async def pids(self, task_id: str) -> list[int]:
        t = self._table.get(task_id)
        if t.status == Status.STOPPED:
            return []
        return await self._shims[t.runtime].pids(task_id)

    async def metrics(self, task_id: str) -> cgroups.Metrics:
        t = self._table.get(task_id)
        if not t.cgroups_path or t.status == Status.STOPPED:
            raise FailedPrecondition(f"task {task_id} has no live cgroup")
        return await asyncio.to_thread(cgroups.read_metrics, t.cgroups_path)

    def get(self, task_id: str) -> TaskState:
        return self._table.get(task_id)

    def list(self) -> list[TaskState]:
        ns = require_namespace()
        return [t for (n, _), t in sorted(self._table.tasks.items()) if n == ns]

    def census(self) -> dict[tuple[str, str], int]:
        """How many tasks each namespace has in each state, across all namespaces (metrics)."""
        counts: dict[tuple[str, str], int] = {}
        for (ns, _), t in self._table.tasks.items():
            counts[ns, t.status.value] = counts.get((ns, t.status.value), 0) + 1
        return counts

    def has(self, container_id: str) -> bool:
        return (require_namespace(), container_id) in self._table.tasks

    def io(self, task_id: str, exec_id: str | None = None) -> ProcessIO:
        t = self._table.get(task_id)
        if exec_id:
            self._exec(t, exec_id)
        return self._shims[t.runtime].io(self._table.paths(t.namespace, task_id, exec_id), exec=exec_id is not None)

    async def resize(self, task_id: str, rows: int, cols: int, exec_id: str | None = None) -> None:
        if not (0 <= rows < 65536 and 0 <= cols < 65536):
            raise InvalidArgument(f"invalid terminal size {rows}x{cols}")
        t = self._table.get(task_id)
        p: ProcessState = self._exec(t, exec_id) if exec_id else t
        if not p.terminal:
            raise FailedPrecondition(f"{p.id} has no terminal")
        await self._shims[t.runtime].resize(self.io(task_id, exec_id), rows, cols)

    # execs ---------------------------------------------------------------

    def _exec(self, t: TaskState, exec_id: str) -> ExecState:
        e = t.execs.get(exec_id)
        if e is None:
            raise NotFound(f"exec {exec_id} not found in task {t.id}")
        return e

    async def add_exec(self, task_id: str, req: ExecCreate) -> ExecState:
        t = self._table.get(task_id)
        cgroups.validate_container_id(req.exec_id)
        if req.exec_id == task_id:
            raise InvalidArgument("an exec id must differ from its task id")
        if not req.args:
            raise InvalidArgument("an exec needs args")
        async with self._table.lock((t.namespace, task_id)):
            if t.status != Status.RUNNING:
                raise FailedPrecondition(f"cannot exec in task {task_id}: it is {t.status.value}")
            if req.exec_id in t.execs:
                raise AlreadyExists(f"exec {req.exec_id} already exists in task {task_id}")
            base = self._processes.get((t.namespace, task_id)) or await self._task_process(t)
            if req.user is None:
                process = self._exec_process(base, t, req)
            else:  # the user is looked up in the container's /etc/passwd and /etc/group
                process = await asyncio.to_thread(self._exec_process, base, t, req)
            # The exec's monitor starts now, holding the process back: a client can attach
            # before start_exec and see its output from the first byte.
            await self._shims[t.runtime].prepare_exec(task_id, req.exec_id, process,
                                                      self._table.paths(t.namespace, task_id, req.exec_id),
                                                      terminal=req.terminal, stdin=req.stdin)
            e = ExecState(id=req.exec_id, terminal=req.terminal, stdin=req.stdin, created_at=time.time(),
                          process=process)
            t.execs[req.exec_id] = e
            self._table.save(t)
        self._events.publish(t.namespace, topics.TASK_EXEC_ADDED, {"container_id": task_id, "exec_id": req.exec_id})
        return e

    async def _task_process(self, t: TaskState) -> dict[str, Any]:
        """The running task's process, not the container's: a run's own variables (create's `env`) apply too.
        From its bundle (a task this runtime did not create: it was restarted since), else the container's."""
        bundle = self._table.task_dir(t.namespace, t.id) / "config.json"
        try:
            process: dict[str, Any] = json.loads(await asyncio.to_thread(bundle.read_text))["process"]
        except (OSError, ValueError, KeyError):
            process = (await self._containers.get(t.id)).spec["process"]
        self._processes[(t.namespace, t.id)] = process
        return process

    def _exec_process(self, base: dict[str, Any], t: TaskState, req: ExecCreate) -> dict[str, Any]:
        # A shallow copy is enough: the keys set below are replaced, never changed in place.
        process = dict(base)
        process["args"] = req.args
        process["terminal"] = req.terminal
        base_env = process.get("env", [])
        process["env"] = merge_env(base_env if req.inherit_env else [], req.env)
        if req.cwd:
            process["cwd"] = req.cwd
        home = next((e for e in base_env if e.startswith("HOME=")), None)  # the task's user's
        if req.user is not None:
            u = resolve_user(str(self._table.task_dir(t.namespace, t.id) / "rootfs"), req.user, req.additional_gids)
            process["user"] = {"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids}
            home = f"HOME={u.home}"
        if not req.inherit_env and home is not None and not any(e.startswith("HOME=") for e in process["env"]):
            process["env"].append(home)
        if req.privileged:
            caps = host_capabilities()
            process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [],
                                       "ambient": []}
        process.pop("consoleSize", None)
        if req.terminal and req.console_size and all(0 < n < 65536 for n in req.console_size):
            process["consoleSize"] = {"height": req.console_size[0], "width": req.console_size[1]}
        return process

    async def start_exec(self, task_id: str, exec_id: str) -> ExecState:
        t = self._table.get(task_id)
        e = self._exec(t, exec_id)
        async with self._table.lock((t.namespace, task_id)):
            if t.status != Status.RUNNING:
                raise FailedPrecondition(f"cannot start exec in task {task_id}: it is {t.status.value}")
            if e.status != Status.CREATED:
                raise FailedPrecondition(f"exec {exec_id} was already started")
            e.pid = await self._shims[t.runtime].start_exec(task_id, exec_id)
            e.transition("start", Status.RUNNING)
            e.started_at = time.time()
            self._table.save(t)
        self._exits.follow(t, exec_id)
        self._events.publish(t.namespace, topics.TASK_EXEC_STARTED, {"container_id": task_id, "exec_id": exec_id,
                                                                     "pid": e.pid})
        return e

    async def delete_exec(self, task_id: str, exec_id: str) -> None:
        t = self._table.get(task_id)
        e = self._exec(t, exec_id)
        if e.status == Status.RUNNING:
            raise FailedPrecondition(f"cannot delete exec {exec_id}: it is running")
        self._shims[t.runtime].abort_exec(task_id, exec_id)
        t.execs.pop(exec_id, None)
        await asyncio.to_thread(shutil.rmtree, self._table.paths(t.namespace, task_id, exec_id).state_dir, True)
        self._exits.forget((t.namespace, task_id, exec_id))
        self._table.save(t)

    # recovery ------------------------------------------------------------

    async def _sweep(self) -> None:
        """A runtime killed between `runc create` and recording the task leaves a container nobody owns."""
        for name, shim in self._shims.items():
            known = {t.id for t in self._table.tasks.values() if t.runtime == name}
            try:
                for cid in await shim.sweep(known):
                    log.warning("removed orphaned container=%s of runtime=%s (no task recorded it)", cid, name)
            except RuntimeError_ as e:
                log.warning("sweeping runtime=%s failed: %s", name, e.message)

    async def recover(self) -> None:
        """Reload every task from disk; exits that happened while we were down are reported now."""
        base = self._table.dirs
        if not base.exists():
            return
        for ns_dir in base.iterdir():
            for d in ns_dir.iterdir():
                try:
                    t = TaskState.load(d)
                except (OSError, ValueError) as e:
                    log.warning("task dir %s unreadable (%s): removing", d, e)
                    await asyncio.to_thread(self._table.remove_dir, d)
                    continue
                self._table.tasks[(t.namespace, t.id)] = t
                if t.runtime_binary and t.runtime in self._shims:
                    self._shims[t.runtime].adopt(t.id, RuntimeBinary(t.runtime_binary, tuple(t.runtime_args)))
                for p in [t, *t.execs.values()]:
                    if p.status == Status.STOPPED:
                        self._exits.exited((t.namespace, t.id, p.id)).set()
                log.info("recovered task=%s namespace=%s status=%s pid=%d", t.id, t.namespace, t.status.value, t.pid)
                if t.status in (Status.RUNNING, Status.PAUSED):
                    self._exits.follow(t)
                    await self._exits.oom.watch(t)
        token = set_namespace("default")
        try:
            await self._exits.check()
        finally:
            reset_namespace(token)

    # shims ---------------------------------------------------------------

    def _shim(self, c: Container) -> Shim:
        shim = self._shims.get(c.runtime)
        if shim is None:
            raise FailedPrecondition(f"runtime {c.runtime} is not available")
        return shim


def _drop_if_empty(log: Path) -> None:
    """The log a failed create's monitor opened: nothing was written, and no removal would find it (the
    engine learns of a task's log only from a create that succeeds). A log with a run's output in it stays."""
    with contextlib.suppress(OSError):
        if log.stat().st_size == 0:
            log.unlink()
