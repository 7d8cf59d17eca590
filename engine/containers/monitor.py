"""The runtime-events loop: every task exit (and OOM kill) in the engine's namespace reaches its container.

On each (re)subscription the records are reconciled with the runtime's task list
first, so exits missed while the engine or the event stream was down are recorded
too. Exits are handled concurrently across containers and in order per container
(each handler queues on the container's lock in arrival order).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from engine.containers.reconcile import Reconciler
from engine.containers.run import RunControl
from runtime import client as rt

log = logging.getLogger("engine.monitor")

TASK_EXIT = "/tasks/exit"
TASK_OOM = "/tasks/oom"
_MAX_BACKOFF = 5.0


class Monitor:
    def __init__(self, run: RunControl, reconciler: Reconciler, runtime: rt.RuntimeAPI, namespace: str,
                 exec_exited: Callable[[str], None] = lambda _: None) -> None:
        self._run = run
        self._exec_exited = exec_exited
        self._reconciler = reconciler
        self._rt = runtime
        self._namespace = namespace
        self._handlers: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        delay = 0.1
        while True:
            try:
                async for message in self._rt.events(topics=[TASK_EXIT, TASK_OOM], namespaces=[self._namespace],
                                                     announce=True):
                    if message.get("status") == "subscribed":
                        await self._reconciler.reconcile()
                        delay = 0.1
                    elif message.get("topic") == TASK_OOM:
                        # Told at once, as it happens, before any exit it causes (which comes after it).
                        self._run.handle_oom(str((message.get("event") or {}).get("container_id") or ""))
                    else:
                        self._dispatch(message.get("event") or {})
                log.warning("runtime event stream ended; resubscribing")
            except rt.RuntimeError_ as e:
                log.warning("runtime event stream failed (%s); resubscribing in %.1fs", e.message, delay)
            except Exception:
                log.exception("container monitor failed; resubscribing in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    def _dispatch(self, event: dict[str, Any]) -> None:
        cid = event.get("container_id")
        if not cid:
            return
        if event.get("id") != cid:
            self._exec_exited(str(event.get("id") or ""))  # an exec's: its owner collects the code
            return
        task = asyncio.create_task(self._run.handle_exit(cid, int(event.get("pid") or 0),
                                                         int(event.get("exit_status") or 0),
                                                         float(event.get("exited_at") or time.time()),
                                                         _oom(event)),
                                   name=f"exit-{cid[:12]}")
        self._handlers.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handling an exit failed", exc_info=task.exception())


def _oom(event: dict[str, Any]) -> bool | None:
    """Whether the exit came of an OOM kill; None from a runtime whose exits do not say."""
    told = event.get("oom_killed")
    return told if isinstance(told, bool) else None
