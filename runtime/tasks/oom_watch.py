"""OOM kills told as they happen: a /tasks/oom for each kill in a task's cgroup, as containerd's OOM monitor
tells them, whether the victim is the task's init, a child of it that it outlives, or an exec.

On cgroup v1 an eventfd registered on memory.oom_control (cgroup.event_control) wakes the loop on each OOM,
which is told then; on v2 inotify sees memory.events change, and a rise of its `oom_kill` counter is told. At a
process's exit the exit watcher asks once more (`settle`): a kill counted beyond those told (its wake-up not
handled yet, or made while no watch was kept, before a runtime restart) is told before the exit.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import struct
from dataclasses import dataclass

from runtime.events import topics
from runtime.events.exchange import Exchange
from runtime.tasks import cgroups
from runtime.tasks.state import TaskState

log = logging.getLogger("runtime.tasks.oom")

_IN_MODIFY = 0x2
_IN_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


@dataclass
class _Watch:
    task: TaskState
    counter: str
    told: int  # the kills told so far (those before the watch began count as told)
    unified: bool
    fd: int = -1  # v1: the eventfd; v2: the inotify watch descriptor
    control: int = -1  # v1: memory.oom_control, open while registered


class OomWatch:
    def __init__(self, events: Exchange) -> None:
        self._events = events
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._inotify = -1
        self._by_wd: dict[int, tuple[str, str]] = {}
        self._layout_read = False

    async def watch(self, t: TaskState) -> None:
        """Start telling of `t`'s OOM kills; kills already counted are left to settle()."""
        key = (t.namespace, t.id)
        if key in self._watches or not t.cgroups_path:
            return
        try:
            # The first look walks mountinfo (off the loop); later ones are a few path checks.
            found = cgroups.oom_counter(t.cgroups_path) if self._layout_read else \
                await asyncio.to_thread(cgroups.oom_counter, t.cgroups_path)
        except OSError as e:
            log.warning("task=%s: no OOM watch (%s)", t.id, e)
            return
        self._layout_read = True
        if found is None:
            return
        counter, unified = found
        # A task not told of yet may have been killed before the watch began (at once, or while a restarted
        # runtime was away): its count starts from nothing, and the check below tells of those.
        watch = _Watch(t, counter, (cgroups.oom_kills(counter) or 0) if t.oom_killed else 0, unified)
        try:
            self._register_v2(key, watch) if unified else self._register_v1(key, watch)
        except OSError as e:
            self._close(watch)
            log.warning("task=%s: no OOM watch on %s (%s); its OOM kills are told at its exit", t.id, counter, e)
            return
        self._watches[key] = watch
        self._check(watch)

    def unwatch(self, t: TaskState) -> None:
        watch = self._watches.pop((t.namespace, t.id), None)
        if watch is not None:
            self._close(watch)

    def close(self) -> None:
        for watch in list(self._watches.values()):
            self.unwatch(watch.task)
        if self._inotify >= 0:
            asyncio.get_running_loop().remove_reader(self._inotify)
            os.close(self._inotify)
            self._inotify = -1

    async def settle(self, t: TaskState) -> None:
        """At an exit of `t`'s init or of one of its execs: tell of a kill not told yet."""
        watch = self._watches.get((t.namespace, t.id))
        if watch is not None:
            self._check(watch)
            return
        if t.oom_killed or not t.cgroups_path:
            return
        killed = cgroups.oom_killed_known(t.cgroups_path)
        if killed is None:
            killed = await asyncio.to_thread(cgroups.oom_killed, t.cgroups_path)
        if killed:
            self._tell(t)

    def _check(self, watch: _Watch) -> None:
        kills = cgroups.oom_kills(watch.counter)
        if kills is None:  # the cgroup went: nothing more to tell
            self.unwatch(watch.task)
        elif kills > watch.told:
            watch.told = kills
            self._tell(watch.task)

    def _tell(self, t: TaskState) -> None:
        t.oom_killed = True
        self._events.publish(t.namespace, topics.TASK_OOM, {"container_id": t.id})
        log.info("task=%s OOM kill", t.id)

    # cgroup v1: an eventfd per task -------------------------------------------------

    def _register_v1(self, key: tuple[str, str], watch: _Watch) -> None:
        watch.fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        watch.control = os.open(watch.counter, os.O_RDONLY | os.O_CLOEXEC)
        with open(os.path.join(os.path.dirname(watch.counter), "cgroup.event_control"), "w") as f:
            f.write(f"{watch.fd} {watch.control}")
        asyncio.get_running_loop().add_reader(watch.fd, self._woken_v1, key)

    def _woken_v1(self, key: tuple[str, str]) -> None:
        watch = self._watches.get(key)
        if watch is None:
            return
        try:
            os.eventfd_read(watch.fd)
        except BlockingIOError:
            return
        # The kernel signals as the OOM begins, before its kill is counted (as containerd, tell it then); a
        # signal of the cgroup going finds no counter.
        kills = cgroups.oom_kills(watch.counter)
        if kills is None:
            self.unwatch(watch.task)
            return
        watch.told = max(watch.told + 1, kills)
        self._tell(watch.task)

    # cgroup v2: one inotify instance for every task ----------------------------------

    def _register_v2(self, key: tuple[str, str], watch: _Watch) -> None:
        if self._inotify < 0:
            self._inotify = _libc().inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if self._inotify < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1")
            asyncio.get_running_loop().add_reader(self._inotify, self._woken_v2)
        wd = _libc().inotify_add_watch(self._inotify, os.fsencode(watch.counter), _IN_MODIFY)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {watch.counter}")
        watch.fd = wd
        self._by_wd[wd] = key

    def _woken_v2(self) -> None:
        try:
            data = os.read(self._inotify, 65536)
        except BlockingIOError:
            return
        woken = set()
        while len(data) >= _IN_EVENT.size:
            wd, _, _, length = _IN_EVENT.unpack_from(data)
            data = data[_IN_EVENT.size + length:]
            woken.add(wd)
        for wd in woken:
            key = self._by_wd.get(wd)
            if key is not None and (watch := self._watches.get(key)) is not None:
                self._check(watch)

    def _close(self, watch: _Watch) -> None:
        if not watch.unified:
            if watch.fd >= 0:
                asyncio.get_running_loop().remove_reader(watch.fd)
                os.close(watch.fd)
            if watch.control >= 0:
                os.close(watch.control)
        elif watch.fd >= 0 and self._inotify >= 0:
            self._by_wd.pop(watch.fd, None)
            _libc().inotify_rm_watch(self._inotify, watch.fd)  # fails harmlessly once the file has gone
        watch.fd = watch.control = -1


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _LIBC
