"""`docker wait`'s conditions, and the future a wait gets, registered on the container's live state."""
from __future__ import annotations

import asyncio
from enum import Enum

from engine.containers.live import Live
from engine.containers.state import Status
from engine.containers.store import Container


class WaitCondition(str, Enum):
    NOT_RUNNING = "not-running"
    NEXT_EXIT = "next-exit"
    REMOVED = "removed"


def waiter(c: Container, live: Live, condition: WaitCondition) -> asyncio.Future[int]:
    """A future for the exit code, registered now: the caller may flush its headers before it resolves."""
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    # dockerd counts a restarting container as running: the wait ends at its next exit, or when its loop ends.
    if condition == WaitCondition.NOT_RUNNING and not c.state.running and c.state.status != Status.RESTARTING:
        fut.set_result(c.state.exit_code)
    elif condition == WaitCondition.REMOVED:
        live.removals[:] = [f for f in live.removals if not f.done()] + [fut]
    else:
        live.exits[:] = [f for f in live.exits if not f.done()] + [fut]
    return fut
