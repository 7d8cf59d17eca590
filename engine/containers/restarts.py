"""Restart policies: whether an exited container runs again, and after what delay (Docker's semantics).

`no`, `always`, `unless-stopped`, `on-failure[:N]`. The delay starts at 100 ms and doubles with each
restart in a row, back to 100 ms once a run lasted 10 s or its user started it again. RestartCount
counts a restart from the exit that decides it, and a user's start sets it back to 0. A container
stopped by its user stays stopped; when the engine starts, `always` brings back even those (as
dockerd does), `unless-stopped` does not.
"""
from __future__ import annotations

from typing import Any

from engine.containers.state import State

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
RESET_AFTER = 10.0


def policy(host_config: dict[str, Any]) -> tuple[str, int]:
    p = host_config.get("RestartPolicy") or {}
    return p.get("Name") or "no", int(p.get("MaximumRetryCount") or 0)


def should_restart(host_config: dict[str, Any], state: State, restart_count: int, *, engine_start: bool) -> bool:
    if host_config.get("AutoRemove"):
        return False
    name, retries = policy(host_config)
    if name == "always":
        return engine_start or not state.manually_stopped
    if name == "unless-stopped":
        return not state.manually_stopped
    if name == "on-failure":
        return (state.exit_code != 0 and not state.manually_stopped
                and (retries == 0 or restart_count < retries))
    return False


class Backoff:
    def __init__(self) -> None:
        self._next = BACKOFF_START

    def delay(self, ran_for: float) -> float:
        if ran_for >= RESET_AFTER:
            self._next = BACKOFF_START
        delay, self._next = self._next, min(self._next * 2, BACKOFF_MAX)
        return delay
