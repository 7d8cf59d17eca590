"""Lining the engine's records up with the runtime's tasks, each time the event stream (re)connects.

Exits missed while the engine or its event stream was down are recorded; tasks the records
do not show running (an engine stopped in the middle of a start or an exit) are adopted or
deleted; healthchecks of containers that ran on resume; restart policies are applied once.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from engine.containers.health import Health, config_of
from engine.containers.live import Lives
from engine.containers.run import RunControl
from engine.containers.state import Status
from engine.containers.store import Container, ContainerStore
from engine.containers.supervise import Supervisor
from engine.networks.service import NetworkService
from runtime import client as rt

log = logging.getLogger("engine.containers")


class Reconciler:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore, lives: Lives, run: RunControl,
                 supervisor: Supervisor, networks: NetworkService, started: float) -> None:
        self._rt = runtime
        self._store = store
        self._lives = lives
        self._run = run
        self._supervisor = supervisor
        self._networks = networks
        self._started = started  # when this engine began: runtime containers older than it are an earlier one's
        self._policies: asyncio.Task[None] | None = None  # the one pass over restart policies at engine start

    async def reconcile(self) -> None:
        # Which runs the records show is read before the runtime's list is asked for: a run recorded
        # then had its task created before the list was made, so a task the list lacks has really
        # gone. Reads made after the list would also see the runs of starts that completed while it
        # was on its way (clients do not wait for our reconciliation), and record them as exit 255
        # while they run.
        recorded = {c.id: c.state.pid for c in self._store.all() if c.state.running}
        tasks = {t.id: t for t in await self._rt.tasks()}
        # As dockerd: what ended while the engine was away restarts with the engine's start, uncounted; after a
        # runtime restart alone, an exit is an exit like any other.
        policy = self._policies is not None
        for c in self._store.all():
            t = tasks.get(c.id)
            if t is None:
                if c.id in recorded:
                    # Its code is lost (handle_exit ignores it if that run has ended or another began).
                    await self._run.handle_exit(c.id, recorded[c.id], 255, time.time(), policy=policy)
            elif t.status == "stopped":
                # Matched by pid: also the exit of a run whose start completed after the list was made.
                await self._run.handle_exit(c.id, t.pid, t.exit_status or 0, t.exited_at or time.time(),
                                            policy=policy)
                if not c.state.running:
                    await self._adopt(c)
            elif c.state.running:
                if t.pid != c.state.pid and recorded.get(c.id) == c.state.pid:
                    # A restart whose new run was never recorded: its exit must match it.
                    c.state.pid = t.pid
                    await self._store.save(c)
            else:
                await self._adopt(c)
        # Asked for each namespace and sandbox as it is decided: a container being started (its lock
        # held, not yet running) keeps what its start is setting up.
        await self._networks.reconcile(self._in_use)
        health = self._run.health
        for c in self._store.all():
            if c.state.running:
                self._run.logs.ship(c)
            # Probes of containers that ran on while the engine was away start again.
            if c.state.running and config_of(c.config) and not health.watching(c.id):
                c.health = c.health or Health()
                health.start(c.id, c.config, c.health, c.state.started_at or time.time())
        if self._policies is None:
            await self._sweep_abandoned_creates()
            self._policies = asyncio.create_task(self._supervisor.apply_at_engine_start(self._run),
                                                 name="restart-policies")

    async def _sweep_abandoned_creates(self) -> None:
        """Runtime containers no record owns: an earlier engine died between the runtime's create and its own
        record. Only those made before this engine started go; a create of this engine's may be under way."""
        for rc in await self._rt.containers():
            if rc.created >= self._started or self._store.find(rc.id) is not None:
                continue
            log.info("removing runtime container=%s that no container record owns (a create cut short)", rc.id)
            with contextlib.suppress(rt.NotFound):
                await self._rt.delete_task(rc.id, force=True)
            with contextlib.suppress(rt.NotFound):
                await self._rt.remove_container(rc.id)

    async def _adopt(self, c: Container) -> None:
        """A task the records do not show running: an engine stopped in the middle of a start or an exit."""
        live = self._lives.of(c.id)
        async with live.lock:
            if self._store.find(c.id) is not c:
                return  # removed meanwhile
            # Asked again under the lock: a start and a stop may have come and gone since the list was made.
            try:
                t = await self._rt.task(c.id)
            except rt.NotFound:
                return
            if t.status in ("running", "paused") and c.state.status in (Status.CREATED, Status.EXITED):
                c.state.start(t.pid, t.started_at or time.time())
                if t.status == "paused":
                    c.state.pause()
                if c.log_path is None:
                    c.log_path = (await self._rt.task_io(c.id)).log_path
                c.rootfs = c.rootfs or t.rootfs
                live.run_over = asyncio.Event()
                await self._store.save(c)
                log.info("adopted running task of container=%s", c.id)
            elif not c.state.running:
                with contextlib.suppress(rt.NotFound):
                    await self._rt.delete_task(c.id, force=True)

    def _in_use(self, cid: str) -> bool:
        """Whether a container's network must stay: it runs, or an operation on it (a start) is under way."""
        c = self._store.find(cid)
        return c is not None and (c.state.running or self._lives.busy(cid))
