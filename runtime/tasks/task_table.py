"""The tasks the runtime knows, by (namespace, id), with their locks and their files on disk.

Shared by the task service, which changes tasks, and the exit watcher, which records
their exits: both look tasks up, take their locks, find their monitors' files and
save their state through this one table.
"""
from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from runtime.errors import NotFound
from runtime.mount import unmount
from runtime.namespaces import require_namespace
from runtime.tasks.shim import ProcessPaths
from runtime.tasks.state import TaskState


class TaskTable:
    def __init__(self, root: Path, state: Path) -> None:
        self._root = root
        # <dirs>/<namespace>/<task id>: the bundle, the monitors' files and the saved state.
        self.dirs = state / "tasks"
        self.tasks: dict[tuple[str, str], TaskState] = {}
        self.locks: dict[tuple[str, str], asyncio.Lock] = {}

    def task_dir(self, ns: str, task_id: str) -> Path:
        return self.dirs / ns / task_id

    def log_path(self, ns: str, container_id: str) -> Path:
        return self._root / "logs" / ns / f"{container_id}.log"

    def paths(self, ns: str, task_id: str, exec_id: str | None = None, log_path: str | None = None) -> ProcessPaths:
        d = self.task_dir(ns, task_id)
        if not exec_id and log_path is None:
            t = self.tasks.get((ns, task_id))
            log_path = t.log_path if t is not None and t.log_path else str(self.log_path(ns, task_id))
        return ProcessPaths(
            bundle=str(d),
            state_dir=str(d / "execs" / exec_id) if exec_id else str(d / "monitor"),
            exit_dir=str(d / "exits"),
            log_path=None if exec_id else log_path,
        )

    def lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def get(self, task_id: str) -> TaskState:
        ns = require_namespace()
        t = self.tasks.get((ns, task_id))
        if t is None:
            raise NotFound(f"task {task_id} not found")
        return t

    def save(self, t: TaskState) -> None:
        t.save(self.task_dir(t.namespace, t.id))

    @staticmethod
    def remove_dir(d: Path) -> None:
        rootfs = d / "rootfs"
        if rootfs.exists():
            unmount(str(rootfs), detach=True)
        shutil.rmtree(d, ignore_errors=True)

    def cleanup_dir(self, d: Path) -> None:
        self.remove_dir(d)
        try:
            os.rmdir(d.parent)
        except OSError:
            pass
