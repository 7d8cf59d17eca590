"""Tasks: running containers, supervised through a shim (conmon + runc).

State lives on disk in each task's state dir, so a restarted runtime recovers
every task: live monitors are watched again, and a task that exited while the
runtime was down is reported stopped with its real exit code and a (late)
/tasks/exit event. Exits are noticed by one watcher loop reading the monitors'
exit files; /tasks/start is always published before /tasks/exit.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, RuntimeError_
from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.metadata.containers import Container, ContainerStore
from runtime.metadata.snapshots import SnapshotService
from runtime.mount import mount_all, unmount
from runtime.namespaces import require_namespace, reset_namespace, set_namespace
from runtime.tasks import cgroups
from runtime.tasks.shim import ProcessIO, ProcessPaths, Shim
from runtime.tasks.spec import ResourceOptions, linux_resources
from runtime.tasks.state import ExecState, ProcessState, Status, TaskState
from runtime.tasks.users import resolve_user

log = logging.getLogger("runtime.tasks")

# Followers catch task and exec exits at once; the poll catches anything they miss.
_POLL = 0.05


class ExecCreate(BaseModel):
    exec_id: str
    args: list[str]
    env: list[str] = []
    cwd: str | None = None
    user: str | None = None
    terminal: bool = False
    stdin: bool = False


class ExitStatus(BaseModel):
    exit_status: int
    exited_at: float


class TaskService:
    def __init__(self, root: Path, state: Path, containers: ContainerStore, snapshots: dict[str, SnapshotService],
                 shims: dict[str, Shim], events: Exchange) -> None:
        self._root = root
        self._state = state
        self._containers = containers
        self._snapshots = snapshots
        self._shims = shims
        self._events = events
        self._tasks: dict[tuple[str, str], TaskState] = {}
        self._exited: dict[tuple[str, str, str], asyncio.Event] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._monitor_gone: set[tuple[str, str]] = set()
        self._followers: set[asyncio.Task[None]] = set()
        self._checking = asyncio.Lock()

    # paths ---------------------------------------------------------------

    def task_dir(self, ns: str, task_id: str) -> Path:
        return self._state / "tasks" / ns / task_id

    def log_path(self, ns: str, container_id: str) -> Path:
        return self._root / "logs" / ns / f"{container_id}.log"

    def _paths(self, ns: str, task_id: str, exec_id: str | None = None) -> ProcessPaths:
        d = self.task_dir(ns, task_id)
        return ProcessPaths(
            bundle=str(d),
            state_dir=str(d / "execs" / exec_id) if exec_id else str(d / "monitor"),
            exit_dir=str(d / "exits"),
            log_path=None if exec_id else str(self.log_path(ns, task_id)),
        )

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _get(self, task_id: str) -> TaskState:
        ns = require_namespace()
        t = self._tasks.get((ns, task_id))
        if t is None:
            raise NotFound(f"task {task_id} not found")
        return t

    def _save(self, t: TaskState) -> None:
        t.save(self.task_dir(t.namespace, t.id))

    def _event(self, key: tuple[str, str, str]) -> asyncio.Event:
        return self._exited.setdefault(key, asyncio.Event())

    # lifecycle -----------------------------------------------------------

    async def start_watching(self) -> None:
        await self.recover()
        await self._sweep()
        self._watcher = asyncio.create_task(self._watch(), name="task-exit-watcher")

    async def close(self) -> None:
        pending = [*self._followers, *([self._watcher] if self._watcher else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def create(self, container_id: str, *, terminal: bool | None = None, stdin: bool = False) -> TaskState:
        ns = require_namespace()
        key = (ns, container_id)
        async with self._lock(key):
            if key in self._tasks:
                raise AlreadyExists(f"task {container_id} already exists")
            c = await self._containers.get(container_id)
            shim = self._shim(c)
            spec = json.loads(json.dumps(c.spec))
            if terminal is None:
                terminal = bool(spec.get("process", {}).get("terminal"))
            spec["process"]["terminal"] = terminal
            d = self.task_dir(ns, container_id)
            if d.exists():
                await asyncio.to_thread(self._remove_dir, d)
            (d / "rootfs").mkdir(parents=True)
            (d / "exits").mkdir()
            (d / "config.json").write_text(json.dumps(spec))
            self.log_path(ns, container_id).parent.mkdir(parents=True, exist_ok=True)
            service = self._snapshots[c.snapshotter]
            mounts = await service.mounts(c.snapshot_key)
            await asyncio.to_thread(mount_all, mounts, str(d / "rootfs"))
            t = TaskState(id=container_id, namespace=ns, runtime=c.runtime, terminal=terminal, stdin=stdin,
                          created_at=time.time(), cgroups_path=spec.get("linux", {}).get("cgroupsPath"))
            paths = self._paths(ns, container_id)
            try:
                t.pid = await shim.create(container_id, paths, terminal=terminal, stdin=stdin)
            except BaseException:
                await asyncio.to_thread(self._cleanup_dir, d)
                raise
            self._save(t)
            self._tasks[key] = t
            self._exited.pop((ns, container_id, container_id), None)
        self._events.publish(ns, topics.TASK_CREATE, {"container_id": container_id, "pid": t.pid,
                                                      "terminal": terminal})
        return t

    async def start(self, task_id: str) -> TaskState:
        t = self._get(task_id)
        async with self._lock((t.namespace, task_id)):
            if t.status != Status.CREATED:
                raise FailedPrecondition(f"cannot start task {task_id}: it is {t.status.value}")
            await self._shims[t.runtime].start(task_id)
            t.transition("start", Status.RUNNING)
            t.started_at = time.time()
            self._save(t)
            # Published under the lock the exit watcher respects: /tasks/start always precedes /tasks/exit.
            self._events.publish(t.namespace, topics.TASK_START, {"container_id": task_id, "pid": t.pid})
        self._follow(t)
        return t

    async def kill(self, task_id: str, signal: int, all: bool = False, exec_id: str | None = None) -> None:
        t = self._get(task_id)
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
        t = self._get(task_id)
        p: ProcessState = self._exec(t, exec_id) if exec_id else t
        await self._event((t.namespace, task_id, exec_id or task_id)).wait()
        assert p.exit_status is not None and p.exited_at is not None
        return ExitStatus(exit_status=p.exit_status, exited_at=p.exited_at)

    async def delete(self, task_id: str, force: bool = False) -> ExitStatus:
        t = self._get(task_id)
        key = (t.namespace, task_id)
        async with self._lock(key):
            shim = self._shims[t.runtime]
            if t.status in (Status.RUNNING, Status.PAUSED):
                if not force:
                    raise FailedPrecondition(f"cannot delete task {task_id}: it is {t.status.value}")
                await shim.kill(task_id, 9, all=True)
                # The watcher skips locked tasks, so the exit is collected here.
                paths = self._paths(t.namespace, task_id)
                while (code := shim.exit_code(task_id, paths, exec=False)) is None and shim.monitor_alive(paths):
                    await asyncio.sleep(_POLL)
                self._exit(t, t, 137 if code is None else code)
            await shim.delete(task_id, force=True)
            await asyncio.to_thread(self._cleanup_dir, self.task_dir(t.namespace, task_id))
            if t.cgroups_path:
                await asyncio.to_thread(cgroups.remove_cgroup, t.cgroups_path)
            self._tasks.pop(key, None)
            self._locks.pop(key, None)
        status = ExitStatus(exit_status=t.exit_status if t.exit_status is not None else 255,
                            exited_at=t.exited_at or time.time())
        self._events.publish(t.namespace, topics.TASK_DELETE, {"container_id": task_id, "pid": t.pid,
                                                               **status.model_dump()})
        return status

    async def pause(self, task_id: str) -> None:
        t = self._get(task_id)
        async with self._lock((t.namespace, task_id)):
            if t.status != Status.RUNNING:
                raise FailedPrecondition(f"cannot pause task {task_id}: it is {t.status.value}")
            await self._shims[t.runtime].pause(task_id)
            t.transition("pause", Status.PAUSED)
            self._save(t)
        self._events.publish(t.namespace, topics.TASK_PAUSED, {"container_id": task_id})

    async def resume(self, task_id: str) -> None:
        t = self._get(task_id)
        async with self._lock((t.namespace, task_id)):
            if t.status != Status.PAUSED:
                raise FailedPrecondition(f"cannot resume task {task_id}: it is {t.status.value}")
            await self._shims[t.runtime].resume(task_id)
            t.transition("resume", Status.RUNNING)
            self._save(t)
        self._events.publish(t.namespace, topics.TASK_RESUMED, {"container_id": task_id})

    async def update(self, task_id: str, resources: ResourceOptions) -> None:
        """Apply new cgroup limits to the live task (the container's stored spec is the caller's to change)."""
        t = self._get(task_id)
        limits = linux_resources(resources)
        if resources.pids_limit is not None and resources.pids_limit <= 0:
            # runc keeps whatever an update leaves out: lifting the limit has to be said.
            limits["pids"] = {"limit": -1}
        async with self._lock((t.namespace, task_id)):
            if t.status == Status.STOPPED:
                raise FailedPrecondition(f"cannot update task {task_id}: it is stopped")
            await self._shims[t.runtime].update(task_id, limits)
        log.info("task=%s resources updated: %s", task_id, limits)

    async def pids(self, task_id: str) -> list[int]:
        t = self._get(task_id)
        if t.status == Status.STOPPED:
            return []
        return await self._shims[t.runtime].pids(task_id)

    async def metrics(self, task_id: str) -> cgroups.Metrics:
        t = self._get(task_id)
        if not t.cgroups_path or t.status == Status.STOPPED:
            raise FailedPrecondition(f"task {task_id} has no live cgroup")
        return await asyncio.to_thread(cgroups.read_metrics, t.cgroups_path)

    def get(self, task_id: str) -> TaskState:
        return self._get(task_id)

    def list(self) -> list[TaskState]:
        ns = require_namespace()
        return [t for (n, _), t in sorted(self._tasks.items()) if n == ns]

    def has(self, container_id: str) -> bool:
        return (require_namespace(), container_id) in self._tasks

    def io(self, task_id: str, exec_id: str | None = None) -> ProcessIO:
        t = self._get(task_id)
        if exec_id:
            self._exec(t, exec_id)
        return self._shims[t.runtime].io(self._paths(t.namespace, task_id, exec_id), exec=exec_id is not None)

    async def resize(self, task_id: str, rows: int, cols: int, exec_id: str | None = None) -> None:
        if not (0 < rows < 65536 and 0 < cols < 65536):
            raise InvalidArgument(f"invalid terminal size {rows}x{cols}")
        t = self._get(task_id)
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
        t = self._get(task_id)
        cgroups.validate_container_id(req.exec_id)
        if req.exec_id == task_id:
            raise InvalidArgument("an exec id must differ from its task id")
        if not req.args:
            raise InvalidArgument("an exec needs args")
        async with self._lock((t.namespace, task_id)):
            if t.status != Status.RUNNING:
                raise FailedPrecondition(f"cannot exec in task {task_id}: it is {t.status.value}")
            if req.exec_id in t.execs:
                raise AlreadyExists(f"exec {req.exec_id} already exists in task {task_id}")
            c = await self._containers.get(task_id)
            process = await asyncio.to_thread(self._exec_process, c, t, req)
            # The exec's monitor starts now, holding the process back: a client can attach
            # before start_exec and see its output from the first byte.
            await self._shims[t.runtime].prepare_exec(task_id, req.exec_id, process,
                                                      self._paths(t.namespace, task_id, req.exec_id),
                                                      terminal=req.terminal, stdin=req.stdin)
            e = ExecState(id=req.exec_id, terminal=req.terminal, stdin=req.stdin, created_at=time.time(),
                          process=process)
            t.execs[req.exec_id] = e
            self._save(t)
        self._events.publish(t.namespace, topics.TASK_EXEC_ADDED, {"container_id": task_id, "exec_id": req.exec_id})
        return e

    def _exec_process(self, c: Container, t: TaskState, req: ExecCreate) -> dict[str, Any]:
        process = json.loads(json.dumps(c.spec["process"]))
        process["args"] = req.args
        process["terminal"] = req.terminal
        env = {kv.split("=", 1)[0]: kv for kv in process.get("env", [])}
        for kv in req.env:
            env[kv.split("=", 1)[0]] = kv
        process["env"] = list(env.values())
        if req.cwd:
            process["cwd"] = req.cwd
        if req.user is not None:
            u = resolve_user(str(self.task_dir(t.namespace, t.id) / "rootfs"), req.user)
            process["user"] = {"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids}
        process.pop("consoleSize", None)
        return process

    async def start_exec(self, task_id: str, exec_id: str) -> ExecState:
        t = self._get(task_id)
        e = self._exec(t, exec_id)
        async with self._lock((t.namespace, task_id)):
            if t.status != Status.RUNNING:
                raise FailedPrecondition(f"cannot start exec in task {task_id}: it is {t.status.value}")
            if e.status != Status.CREATED:
                raise FailedPrecondition(f"exec {exec_id} was already started")
            e.pid = await self._shims[t.runtime].start_exec(task_id, exec_id)
            e.transition("start", Status.RUNNING)
            e.started_at = time.time()
            self._save(t)
        self._follow(t, exec_id)
        self._events.publish(t.namespace, topics.TASK_EXEC_STARTED, {"container_id": task_id, "exec_id": exec_id,
                                                                     "pid": e.pid})
        return e

    async def delete_exec(self, task_id: str, exec_id: str) -> None:
        t = self._get(task_id)
        e = self._exec(t, exec_id)
        if e.status == Status.RUNNING:
            raise FailedPrecondition(f"cannot delete exec {exec_id}: it is running")
        self._shims[t.runtime].abort_exec(task_id, exec_id)
        t.execs.pop(exec_id, None)
        await asyncio.to_thread(shutil.rmtree, self._paths(t.namespace, task_id, exec_id).state_dir, True)
        self._exited.pop((t.namespace, task_id, exec_id), None)
        self._save(t)

    # exits ---------------------------------------------------------------

    def _follow(self, t: TaskState, exec_id: str | None = None) -> None:
        """Collect the exit as soon as the process's monitor goes, rather than at the next poll."""

        async def wait() -> None:
            await self._shims[t.runtime].wait_monitor(self._paths(t.namespace, t.id, exec_id))
            lock = self._locks.get((t.namespace, t.id))
            if lock is None or not lock.locked():
                await self._check_exits()

        task = asyncio.create_task(wait(), name=f"follow-{t.id}-{exec_id or 'init'}")
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _watch(self) -> None:
        while True:
            try:
                await self._check_exits()
            except Exception:
                log.exception("exit watcher failed; continuing")
            await asyncio.sleep(_POLL)

    async def _check_exits(self) -> None:
        # The poll loop and the per-task followers both call this: one pass at a time.
        async with self._checking:
            await self._check_exits_once()

    async def _check_exits_once(self) -> None:
        for (ns, task_id), t in list(self._tasks.items()):
            shim = self._shims.get(t.runtime)
            lock = self._locks.get((ns, task_id))
            if shim is None or (lock is not None and lock.locked()):
                # A start, exec or delete is under way: its outcome is seen next round.
                continue
            for e in list(t.execs.values()):
                if e.status == Status.RUNNING:
                    code = shim.exit_code(e.id, self._paths(ns, task_id, e.id), exec=True)
                    if code is not None:
                        await self._check_oom(t)
                        self._exit(t, e, code)
            if t.status in (Status.RUNNING, Status.PAUSED, Status.CREATED) and t.pid:
                paths = self._paths(ns, task_id)
                code = shim.exit_code(task_id, paths, exec=False)
                if code is None and t.status != Status.CREATED and not shim.monitor_alive(paths):
                    # The monitor died without recording an exit. Seen twice in a row (it may be
                    # writing the file as it goes), nothing will ever record one.
                    if (ns, task_id) in self._monitor_gone:
                        code = shim.exit_code(task_id, paths, exec=False)
                        code = 255 if code is None else code
                    else:
                        self._monitor_gone.add((ns, task_id))
                else:
                    self._monitor_gone.discard((ns, task_id))
                if code is not None:
                    await self._check_oom(t)
                    for e in t.execs.values():
                        if e.status == Status.RUNNING:
                            self._exit(t, e, 137)
                    self._exit(t, t, code)

    async def _check_oom(self, t: TaskState) -> None:
        """Report an OOM kill in the task's cgroup (of its init or of an exec) once, before the exit it causes."""
        if t.oom_killed or not t.cgroups_path:
            return
        if await asyncio.to_thread(cgroups.oom_killed, t.cgroups_path):
            t.oom_killed = True
            self._events.publish(t.namespace, topics.TASK_OOM, {"container_id": t.id})

    def _exit(self, t: TaskState, p: ProcessState, code: int) -> None:
        if p.status == Status.STOPPED:
            return
        p.status = Status.STOPPED
        p.exit_status = code
        p.exited_at = time.time()
        self._save(t)
        self._event((t.namespace, t.id, p.id)).set()
        self._events.publish(t.namespace, topics.TASK_EXIT, {
            "container_id": t.id, "id": p.id, "pid": p.pid, "exit_status": code, "exited_at": p.exited_at,
        })
        log.info("task=%s process=%s exit_status=%d", t.id, p.id, code)

    async def _sweep(self) -> None:
        """A runtime killed between `runc create` and recording the task leaves a container nobody owns."""
        for name, shim in self._shims.items():
            known = {t.id for t in self._tasks.values() if t.runtime == name}
            try:
                for cid in await shim.sweep(known):
                    log.warning("removed orphaned container=%s of runtime=%s (no task recorded it)", cid, name)
            except RuntimeError_ as e:
                log.warning("sweeping runtime=%s failed: %s", name, e.message)

    async def recover(self) -> None:
        """Reload every task from disk; exits that happened while we were down are reported now."""
        base = self._state / "tasks"
        if not base.exists():
            return
        for ns_dir in base.iterdir():
            for d in ns_dir.iterdir():
                try:
                    t = TaskState.load(d)
                except (OSError, ValueError) as e:
                    log.warning("task dir %s unreadable (%s): removing", d, e)
                    await asyncio.to_thread(self._remove_dir, d)
                    continue
                self._tasks[(t.namespace, t.id)] = t
                for p in [t, *t.execs.values()]:
                    if p.status == Status.STOPPED:
                        self._event((t.namespace, t.id, p.id)).set()
                log.info("recovered task=%s namespace=%s status=%s pid=%d", t.id, t.namespace, t.status.value, t.pid)
                if t.status in (Status.RUNNING, Status.PAUSED):
                    self._follow(t)
        token = set_namespace("default")
        try:
            await self._check_exits()
        finally:
            reset_namespace(token)

    # cleanup -------------------------------------------------------------

    def _shim(self, c: Container) -> Shim:
        shim = self._shims.get(c.runtime)
        if shim is None:
            raise FailedPrecondition(f"runtime {c.runtime} is not available")
        return shim

    @staticmethod
    def _remove_dir(d: Path) -> None:
        rootfs = d / "rootfs"
        if rootfs.exists():
            unmount(str(rootfs), detach=True)
        shutil.rmtree(d, ignore_errors=True)

    def _cleanup_dir(self, d: Path) -> None:
        self._remove_dir(d)
        try:
            os.rmdir(d.parent)
        except OSError:
            pass
