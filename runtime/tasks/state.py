"""Task and exec state: an explicit state machine, persisted as JSON in the task's state dir."""
from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from runtime.errors import FailedPrecondition


class Status(str, Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


# Which transitions each operation may make; anything else is FailedPrecondition (HTTP 412).
_ALLOWED: dict[str, set[tuple[Status, Status]]] = {
    "start": {(Status.CREATED, Status.RUNNING)},
    "pause": {(Status.RUNNING, Status.PAUSED)},
    "resume": {(Status.PAUSED, Status.RUNNING)},
    "exit": {(Status.CREATED, Status.STOPPED), (Status.RUNNING, Status.STOPPED), (Status.PAUSED, Status.STOPPED)},
}


class ProcessState(BaseModel):
    id: str  # the task id for the init process, the exec id otherwise
    pid: int = 0
    status: Status = Status.CREATED
    terminal: bool = False
    stdin: bool = False
    exit_status: int | None = None
    created_at: float = 0.0
    started_at: float | None = None
    exited_at: float | None = None

    def transition(self, op: str, to: Status) -> None:
        if (self.status, to) not in _ALLOWED[op]:
            raise FailedPrecondition(f"cannot {op} {self.id}: it is {self.status.value}")
        self.status = to


class ExecState(ProcessState):
    process: dict[str, Any] = Field(default_factory=dict)


class TaskState(ProcessState):
    namespace: str
    runtime: str
    # A runc-compatible binary this task runs with in place of its runtime's own, with arguments before
    # each command (containerd's runc BinaryName): kept so that every later command uses it too.
    runtime_binary: str | None = None
    runtime_args: list[str] = Field(default_factory=list)
    # stdin outlives every attached client (only the process's exit ends it), as for Docker's
    # OpenStdin containers that are not StdinOnce.
    keep_stdin_open: bool = False
    cgroups_path: str | None = None
    rootfs: str | None = None  # where the container's filesystem is mounted while the task exists
    log_path: str | None = None  # where its monitor writes the output, if not the runtime's own log dir
    oom_killed: bool = False
    execs: dict[str, ExecState] = Field(default_factory=dict)

    def save(self, directory: Path) -> None:
        tmp = directory / "task.json.tmp"
        tmp.write_text(self.model_dump_json())
        os.replace(tmp, directory / "task.json")

    @classmethod
    def load(cls, directory: Path) -> "TaskState":
        return cls.model_validate(json.loads((directory / "task.json").read_text()))
