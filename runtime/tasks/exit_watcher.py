"""Collecting the exits of tasks and execs, and reporting each exactly once.

Exits are noticed by one watcher loop reading the monitors' exit files, and at once by a follower per live
process that wakes when its monitor goes. Each exit becomes the process's stopped state, a wake-up of its waiters
and a /tasks/exit event (preceded by /tasks/oom when its cgroup saw an OOM kill not told yet: oom_watch.py tells
them as they happen). A task whose lock is held is skipped: the start, exec or delete under way is seen next
round, which keeps /tasks/start before /tasks/exit. Kept apart from the task service because it runs on its own,
beside every request.
"""
from __future__ import annotations

import asyncio
import logging
import time

from runtime.errors import RuntimeError_
from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.tasks.oom_watch import OomWatch
from runtime.tasks.shim import Shim
from runtime.tasks.state import ProcessState, Status, TaskState
from runtime.tasks.task_table import TaskTable

log = logging.getLogger("runtime.tasks")

# Followers catch task and exec exits at once; the poll catches anything they miss.
POLL = 0.05


class ExitWatcher:
    def __init__(self, table: TaskTable, shims: dict[str, Shim], events: Exchange) -> None:
        self._table = table
        self._shims = shims
        self._events = events
        self._exited: dict[tuple[str, str, str], asyncio.Event] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._monitor_gone: set[tuple[str, str]] = set()
        self._followers: set[asyncio.Task[None]] = set()
        # Processes whose monitor a follower waits on: the poll leaves them to it, so its cost stays
        # with the few processes nobody follows (a monitor that was already gone, say), not every task.
        self._followed: set[tuple[str, str, str]] = set()
        self._checking = asyncio.Lock()
        self.oom = OomWatch(events)

    def exited(self, key: tuple[str, str, str]) -> asyncio.Event:
        """Set once process (namespace, task id, exec id or task id) has exited."""
        return self._exited.setdefault(key, asyncio.Event())

    def forget(self, key: tuple[str, str, str]) -> None:
        self._exited.pop(key, None)

    def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch(), name="task-exit-watcher")

    async def close(self) -> None:
        self.oom.close()
        pending = [*self._followers, *([self._watcher] if self._watcher else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def follow(self, t: TaskState, exec_id: str | None = None) -> None:
        """Collect the exit as soon as the process's monitor goes, rather than at the next poll."""

        key = (t.namespace, t.id, exec_id or t.id)

        async def wait() -> None:
            try:
                await self._shims[t.runtime].wait_monitor(self._table.paths(t.namespace, t.id, exec_id))
            finally:
                self._followed.discard(key)
            lock = self._table.locks.get((t.namespace, t.id))
            if lock is None or not lock.locked():
                await self.check()

        self._followed.add(key)
        task = asyncio.create_task(wait(), name=f"follow-{t.id}-{exec_id or 'init'}")
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _watch(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("exit watcher failed; continuing")
            await asyncio.sleep(POLL)

    async def check(self) -> None:
        # The poll loop and the per-task followers both call this: one pass at a time.
        async with self._checking:
            await self._check_once()

    async def _check_once(self) -> None:
        for (ns, task_id), t in list(self._table.tasks.items()):
            shim = self._shims.get(t.runtime)
            lock = self._table.locks.get((ns, task_id))
            if shim is None or (lock is not None and lock.locked()):
                # A start, exec or delete is under way: its outcome is seen next round.
                continue
            for e in list(t.execs.values()):
                if e.status == Status.RUNNING and (ns, task_id, e.id) not in self._followed:
                    exec_paths = self._table.paths(ns, task_id, e.id)
                    code = shim.exit_code(e.id, exec_paths, exec=True)
                    if code is not None:
                        await self._check_oom(t)
                        # Found by polling (after a restart, say): it ended when its code was written.
                        self.record(t, e, code, shim.exited_at(e.id, exec_paths, exec=True))
            if t.status in (Status.RUNNING, Status.PAUSED, Status.CREATED) and t.pid \
                    and (ns, task_id, task_id) not in self._followed:
                paths = self._table.paths(ns, task_id)
                code = shim.exit_code(task_id, paths, exec=False)
                if code is None and t.status != Status.CREATED and not shim.monitor_alive(paths):
                    # The monitor died without recording an exit. Seen twice in a row (it may be
                    # writing the file as it goes), nothing will ever record one.
                    if (ns, task_id) in self._monitor_gone:
                        code = shim.exit_code(task_id, paths, exec=False)
                        if code is None:
                            code = await self._monitor_lost(t, shim)
                    else:
                        self._monitor_gone.add((ns, task_id))
                else:
                    self._monitor_gone.discard((ns, task_id))
                if code is not None:
                    await self._check_oom(t)
                    for e in t.execs.values():
                        if e.status == Status.RUNNING:
                            self.record(t, e, 137)
                    self.record(t, t, code, shim.exited_at(task_id, paths, exec=False))

    async def _monitor_lost(self, t: TaskState, shim: Shim) -> int:
        """The task's monitor died without an exit (killed): as containerd does for a dead shim, what is left
        of the task is killed, and its exit is SIGKILL's, 137."""
        log.warning("task=%s: its monitor is gone without an exit; killing what is left of it", t.id)
        try:
            await shim.kill(t.id, 9, all=True)
        except RuntimeError_ as e:
            log.info("task=%s: nothing left to kill (%s)", t.id, e.message)
        return 128 + 9

    async def _check_oom(self, t: TaskState) -> None:
        """Report an OOM kill in the task's cgroup (of its init or of an exec) before the exit it causes."""
        await self.oom.settle(t)

    def record(self, t: TaskState, p: ProcessState, code: int, at: float | None = None) -> None:
        """Stop `p` (task `t` itself or one of its execs) with exit `code` at `at` (now if unknown); a second
        exit is ignored."""
        if p.status == Status.STOPPED:
            return
        p.status = Status.STOPPED
        p.exit_status = code
        p.exited_at = at or time.time()
        self._table.save(t)
        self.exited((t.namespace, t.id, p.id)).set()
        self._events.publish(t.namespace, topics.TASK_EXIT, {
            "container_id": t.id, "id": p.id, "pid": p.pid, "exit_status": code, "exited_at": p.exited_at,
            # Beyond containerd's TaskExit: whoever follows exits learns of an OOM kill without asking again.
            "oom_killed": t.oom_killed,
        })
        log.info("task=%s process=%s exit_status=%d", t.id, p.id, code)
