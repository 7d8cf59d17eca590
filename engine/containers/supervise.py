"""Supervision: restart policies with Docker's backoff, and the actions of failing healthchecks.

Exits reach here from run control with the container's lock held; a restart is then a
task of its own that waits out its delay and starts the container again under the lock.
What to start and stop with is passed in (Controls), so supervision and run control
never hold each other.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any, Protocol

from engine.containers.health import ON_FAILURE_ACTIONS, ON_FAILURE_LABEL, Health
from engine.containers.live import Live, Lives, settle
from engine.containers.restarts import Backoff, should_restart
from engine.containers.state import Status
from engine.containers.store import Container, ContainerStore
from engine.errors import EngineError
from engine.events import EventBus
from runtime import client as rt

log = logging.getLogger("engine.containers")


class Controls(Protocol):
    async def start_locked(self, c: Container, live: Live) -> None: ...

    async def stop(self, ref: str, timeout: int | None, sig: str | None = None) -> None: ...


class Supervisor:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore, lives: Lives, events: EventBus) -> None:
        self._rt = runtime
        self._store = store
        self._lives = lives
        self._events = events
        # Holds every task started here until it is done. The event loop holds tasks only weakly, and a
        # restart's start waits on the runtime's replies, whose stream readers asyncio holds weakly too: a
        # task nothing else refers to is garbage, and the cycle collector destroyed restarts mid-start,
        # leaving their containers `restarting` for good.
        self._background: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # restart policies --------------------------------------------------

    async def after_exit(self, c: Container, live: Live, at: float, controls: Controls) -> None:
        """With the lock held, after an exit was recorded: restart if the policy (or a health action) says so."""
        if live.health_restart or should_restart(c.host_config, c.state, c.restart_count, engine_start=False):
            live.health_restart = False
            delay = live.backoff.delay(at - (c.state.started_at or at))
            # Counted when decided, as dockerd does: a restarting container's count includes its pending restart.
            c.restart_count += 1
            c.state.schedule_restart()
            await self._store.save(c)
            log.info("container=%s exited with %d: restarting in %.1fs (policy %s)", c.id, c.state.exit_code, delay,
                     (c.host_config.get("RestartPolicy") or {}).get("Name"))
            # live.restart is only the pending start, which a stop or start cancels; once it runs, its start
            # holds the lock and only _background keeps the task.
            live.restart = self._spawn(self._restart_after(c.id, delay, controls), f"restart-{c.id[:12]}")

    async def _restart_after(self, cid: str, delay: float, controls: Controls) -> None:
        await asyncio.sleep(delay)
        live = self._lives.of(cid)
        async with live.lock:
            c = self._store.find(cid)
            if c is None or c.state.status != Status.RESTARTING:
                return
            live.restart = None
            try:
                await controls.start_locked(c, live)
            except (EngineError, rt.RuntimeError_) as e:
                log.warning("restart of container=%s failed: %s", cid, getattr(e, "message", e))
                if c.state.status == Status.RESTARTING:
                    self._give_up(c, live)
                    await self._store.save(c)

    @staticmethod
    def renew(c: Container, live: Live) -> None:
        """A user's start or restart begins a new loop: no count, the first delay again (as dockerd's)."""
        c.state.manually_stopped, c.restart_count = False, 0
        live.backoff = Backoff()

    @staticmethod
    def cancel(c: Container, live: Live) -> None:
        if live.restart is not None:
            live.restart.cancel()
            live.restart = None
        if c.state.status == Status.RESTARTING:
            Supervisor._give_up(c, live)

    @staticmethod
    def _give_up(c: Container, live: Live) -> None:
        c.state.cancel_restart()
        # A restarting container counts as running for `docker wait` (as in dockerd): its waiters have their
        # answer once it stops for good.
        settle(live.exits, c.state.exit_code)

    async def apply_at_engine_start(self, controls: Controls) -> None:
        """What a policy wants running again (after a reboot, say) is started."""
        for c in self._store.all():
            # A restart the last engine had scheduled is due now.
            due = c.state.status == Status.RESTARTING or (
                c.state.status == Status.EXITED and c.state.started_at is not None
                and should_restart(c.host_config, c.state, c.restart_count, engine_start=True))
            if not due:
                continue
            live = self._lives.of(c.id)
            async with live.lock:
                if self._store.find(c.id) is None or c.state.status not in (Status.EXITED, Status.RESTARTING):
                    continue
                try:
                    await controls.start_locked(c, live)
                except (EngineError, rt.RuntimeError_) as e:
                    log.warning("start of container=%s at engine start failed: %s", c.id, getattr(e, "message", e))

    # healthchecks ------------------------------------------------------

    async def health_changed(self, cid: str, health: Health, before: str, controls: Controls) -> None:
        c = self._store.find(cid)
        if c is None or c.health is not health:
            return
        await self._store.save(c)
        if health.Status == before:
            return
        self._events.container(c, f"health_status: {health.Status}")
        action = (c.config.get("Labels") or {}).get(ON_FAILURE_LABEL, "none")
        if health.Status == "unhealthy" and action in ON_FAILURE_ACTIONS and action != "none":
            log.info("container=%s is unhealthy: %s it", cid, action)
            # Not from the probe's own task: the action's exit stops that task.
            self._spawn(self._health_action(cid, action, controls), f"health-action-{cid[:12]}")

    async def _health_action(self, cid: str, action: str, controls: Controls) -> None:
        try:
            if action == "stop":
                await controls.stop(cid, None)
                return
            if action == "restart":
                self._lives.of(cid).health_restart = True
            await self._rt.kill_task(cid, signal.SIGKILL, all=True)
        except (EngineError, rt.RuntimeError_) as e:
            log.warning("health action %s on container=%s failed: %s", action, cid, getattr(e, "message", e))
