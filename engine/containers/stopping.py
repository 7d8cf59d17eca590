"""A stop's signals: the stop signal, then KILL when the process outlives the stop's timeout.

The stop that holds the container's lock runs this, and so does any stop that comes while it waits: as with
dockerd, a second `docker stop` acts at once with its own signal and timeout (`stop -t 0` beside a `stop -t
60` kills now) instead of queueing behind the first."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from engine.containers.state import Status
from engine.containers.store import Container
from engine.events import EventBus
from runtime import client as rt
from runtime.client.signals import parse_signal

log = logging.getLogger("engine.containers")

DEFAULT_STOP_TIMEOUT = 10


def stop_terms(c: Container, timeout: int | None, sig: str | None) -> tuple[int, int]:
    """The signal and the seconds to wait for it: the request's, else the container's, else dockerd's."""
    signum = parse_signal(sig or c.config.get("StopSignal") or "SIGTERM")
    configured = c.config.get("StopTimeout")
    wait = timeout if timeout is not None else DEFAULT_STOP_TIMEOUT if configured is None else configured
    return signum, wait


async def signal_until_gone(runtime: rt.RuntimeAPI, events: EventBus, c: Container, signum: int, wait: int,
                            gone: asyncio.Future[Any]) -> None:
    """Send `signum`, give the process `wait` seconds (forever if negative) to be `gone`, then KILL it."""
    paused = c.state.status == Status.PAUSED
    with contextlib.suppress(rt.FailedPrecondition, rt.NotFound):
        await runtime.kill_task(c.id, signum)
        events.container(c, "kill", signal=str(signum))
    if paused:
        # As dockerd: the signal goes to the frozen process, which is then thawed to act on it.
        with contextlib.suppress(rt.FailedPrecondition, rt.NotFound):
            await runtime.resume_task(c.id)
            c.state.unpause()
            events.container(c, "unpause")
    done, _ = await asyncio.wait({gone}, timeout=wait if wait >= 0 else None)
    if not done:
        log.info("container=%s still running %ds after signal %d: killing it", c.id, wait, signum)
        with contextlib.suppress(rt.FailedPrecondition, rt.NotFound):
            await runtime.kill_task(c.id, signal.SIGKILL, all=True)
            events.container(c, "kill", signal=str(int(signal.SIGKILL)))
