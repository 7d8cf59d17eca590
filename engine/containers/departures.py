"""The runtime's side of removing --rm containers, finished after their clients have been answered.

An --rm container is gone for Docker's clients once its exit is recorded and its record removed; what the
runtime still holds of it (the exited task's runc state and rootfs mount, the container and its writable
snapshot) is of no use to anyone, so it goes while `docker run --rm` is already told the container is gone
instead of before. What must see those gone first waits here: an image removal (the runtime frees an
image's layers only once no container's snapshot sits on them) and the engine's stop. A removal cut short
by a crash leaves a runtime container no record owns, which the next start sweeps (reconcile.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

from runtime import client as rt

log = logging.getLogger("engine.containers")
# Retries while the runtime is unreachable, doubling from 0.1 s: about a minute in all.
_GIVE_UP = 30.0


class Departures:
    def __init__(self, runtime: rt.RuntimeAPI) -> None:
        self._rt = runtime
        self._pending: set[asyncio.Task[None]] = set()

    def remove(self, cid: str, *, task: bool) -> None:
        """Remove the runtime's container `cid` (and first its task, unless that is known to be gone)."""
        job = asyncio.create_task(self._remove(cid, task), name=f"depart-{cid[:12]}")
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)

    async def _remove(self, cid: str, task: bool) -> None:
        delay = 0.1
        while True:
            try:
                if task:
                    with contextlib.suppress(rt.NotFound):
                        await self._rt.delete_task(cid, force=True)
                with contextlib.suppress(rt.NotFound):
                    await self._rt.remove_container(cid)
                return
            except rt.Unavailable as e:
                # A runtime restarting: nobody else would remove it before the engine's next start.
                if delay > _GIVE_UP:
                    log.warning("runtime removal of container=%s failed (the next start sweeps it): %s", cid,
                                e.message)
                    return
                await asyncio.sleep(delay)
                delay *= 2
            except rt.RuntimeError_ as e:
                log.warning("runtime removal of container=%s failed (the next start sweeps it): %s", cid, e.message)
                return

    async def settled(self) -> None:
        """Once every removal under way has ended."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
