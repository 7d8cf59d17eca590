"""A container's state machine, and how Docker clients see it (inspect State, ps Status text)."""
from __future__ import annotations

import datetime
import time
from enum import Enum
from typing import Any

from pydantic import BaseModel

from engine.errors import Conflict
from engine.humanize import human_duration

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: what Docker shows for "never"


class Status(str, Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


def not_running(cid: str, status: Status) -> Conflict:
    """dockerd's refusal of what needs the process (exec, pause, top): a restarting container is to be waited for."""
    if status == Status.RESTARTING:
        return Conflict(f"Container {cid} is restarting, wait until the container is running")
    return Conflict(f"Container {cid} is not running")


# Operation -> the statuses it may start from, and where it leads.
_TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "start": (frozenset({Status.CREATED, Status.EXITED, Status.RESTARTING}), Status.RUNNING),
    "exit": (frozenset({Status.RUNNING, Status.PAUSED}), Status.EXITED),
    # A restart policy's wait between an exit and the next start; a stop ends it.
    "schedule_restart": (frozenset({Status.EXITED}), Status.RESTARTING),
    "cancel_restart": (frozenset({Status.RESTARTING}), Status.EXITED),
    "pause": (frozenset({Status.RUNNING}), Status.PAUSED),
    "unpause": (frozenset({Status.PAUSED}), Status.RUNNING),
    "remove": (frozenset({Status.CREATED, Status.EXITED, Status.DEAD, Status.RESTARTING}), Status.REMOVING),
}


class State(BaseModel):
    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    # Stopped or killed by a user: `unless-stopped` leaves it so, even across engine restarts.
    manually_stopped: bool = False

    @property
    def running(self) -> bool:
        """Docker's State.Running: a paused container is still running."""
        return self.status in (Status.RUNNING, Status.PAUSED)

    def _move(self, op: str) -> None:
        allowed, to = _TRANSITIONS[op]
        if self.status not in allowed:
            raise Conflict(f"cannot {op} a container that is {self.status.value}")
        self.status = to

    def start(self, pid: int, at: float) -> None:
        self._move("start")
        self.pid, self.started_at = pid, at
        self.exit_code, self.error, self.oom_killed = 0, "", False

    def exit(self, code: int, at: float, oom_killed: bool) -> None:
        self._move("exit")
        self.pid, self.exit_code, self.finished_at, self.oom_killed = 0, code, at, oom_killed

    def start_failed(self, code: int, error: str) -> None:
        """A start that never ran the process: the status stays, the error is kept for inspect."""
        self.exit_code, self.error = code, error

    def schedule_restart(self) -> None:
        self._move("schedule_restart")

    def cancel_restart(self) -> None:
        self._move("cancel_restart")

    def pause(self) -> None:
        self._move("pause")

    def unpause(self) -> None:
        self._move("unpause")

    def removing(self) -> None:
        self._move("remove")

    def docker(self) -> dict[str, Any]:
        return {
            "Status": self.status.value,
            # Docker counts a container waiting out its restart delay as running.
            "Running": self.running or self.status == Status.RESTARTING,
            "Paused": self.status == Status.PAUSED,
            "Restarting": self.status == Status.RESTARTING,
            "OOMKilled": self.oom_killed,
            "Dead": self.status == Status.DEAD,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": rfc3339(self.started_at),
            "FinishedAt": rfc3339(self.finished_at),
        }

    def text(self, now: float | None = None) -> str:
        """The ps Status column: "Up 5 seconds", "Exited (0) 3 seconds ago", "Created"."""
        now = time.time() if now is None else now
        if self.status == Status.RUNNING:
            return f"Up {human_duration(now - (self.started_at or now))}"
        if self.status == Status.PAUSED:
            return f"Up {human_duration(now - (self.started_at or now))} (Paused)"
        if self.status == Status.RESTARTING:
            return f"Restarting ({self.exit_code}) {human_duration(now - (self.finished_at or now))} ago"
        if self.status == Status.EXITED:
            return f"Exited ({self.exit_code}) {human_duration(now - (self.finished_at or now))} ago"
        if self.status == Status.REMOVING:
            return "Removal In Progress"
        if self.status == Status.DEAD:
            return "Dead"
        return "Created"


def rfc3339(ts: float | None) -> str:
    """RFC 3339 in UTC with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano)."""
    if ts is None:
        return ZERO_TIME
    ns = round(ts * 1e9)
    base = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"
