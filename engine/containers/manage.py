"""Changes to a container that neither start nor end a run: update, pause, unpause, rename, resize, top."""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

from engine.containers import names
from engine.containers.health import HealthMonitor
from engine.containers.hostlimits import Features, discard_unsupported
from engine.containers.linkedit import LinkEditor
from engine.containers.live import Lives
from engine.containers.resources import UpdateRequest, merged, runtime_resources
from engine.containers.state import Status, not_running
from engine.containers.store import Container, ContainerStore
from engine.errors import Conflict, InvalidArgument, prefixed
from engine.events import EventBus
from runtime import client as rt


class Names(Protocol):
    async def renamed(self, cid: str, old: str, new: str) -> None: ...


class Manager:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore, lives: Lives, events: EventBus,
                 host: Features, link_editor: LinkEditor, health: HealthMonitor, dns: Names) -> None:
        self._rt = runtime
        self._dns = dns
        self._health = health
        self._links = link_editor
        self._store = store
        self._lives = lives
        self._events = events
        self._host = host

    async def rename(self, ref: str, new: str) -> None:
        if not new:
            raise InvalidArgument("Neither old nor new names may be empty")
        c = self._store.get(ref)
        if new.removeprefix("/") == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        old = c.name
        try:
            # dockerd names the new name with its slash here, and says what it was doing.
            bare = names.validate("/" + new.removeprefix("/"))
            await self._store.rename(c, bare)
        except (InvalidArgument, Conflict) as e:
            raise prefixed(e, "Error when allocating new name: ") from None
        await self._links.renamed(old, bare)
        await self._dns.renamed(c.id, old, bare)
        self._events.container(c, "rename", oldName="/" + old)

    async def remove_link(self, link: str) -> None:
        await self._links.remove(link)

    async def update(self, ref: str, req: UpdateRequest) -> list[str]:
        """docker update: new limits for the container's next runs and, if it runs, for this one; the warnings."""
        c = self._store.get(ref)
        live = self._lives.of(c.id)
        async with live.lock:
            c = self._lives.current(ref, c.id)
            discarded = discard_unsupported(req, await self._host.features())
            try:
                host_config, warnings = merged(c.host_config, req)
            except Conflict as e:  # what clashes with the container's current values, in dockerd's words
                raise prefixed(e, f"Cannot update container {c.id}: ") from None
            old, new = runtime_resources(c.host_config), runtime_resources(host_config)
            if new != old:
                # The runtime's stored spec first: it checks what only the host knows before anything live changes.
                await self._rt.set_container_resources(c.id, new)
                if c.state.running:
                    await self._update_task(c, old, new)
            c.host_config = host_config
            await self._store.save(c)
        self._events.container(c, "update")
        return discarded + warnings

    async def _update_task(self, c: Container, old: dict[str, Any], new: dict[str, Any]) -> None:
        try:
            await self._rt.update_task(c.id, new)
        except (rt.NotFound, rt.FailedPrecondition):
            pass  # the process has just ended; its next run starts with the stored limits
        except rt.RuntimeError_:
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.set_container_resources(c.id, old)
            raise

    async def pause(self, ref: str) -> None:
        c = self._store.get(ref)
        async with self._lives.of(c.id).lock:
            c = self._lives.current(ref, c.id)
            if c.state.status == Status.PAUSED:
                raise Conflict(f"Container {c.id} is already paused")
            if not c.state.running:
                raise not_running(c.id, c.state.status)
            try:
                await self._rt.pause_task(c.id)
            except (rt.NotFound, rt.FailedPrecondition):
                # It exited a moment ago and its exit is on its way here: not running, as dockerd says.
                raise Conflict(f"Container {c.id} is not running") from None
            c.state.pause()
            self._health.stop(c.id, c.health)  # dockerd's: no probes of a frozen container, `unhealthy`
            await self._store.save(c)
        self._events.container(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self._store.get(ref)
        async with self._lives.of(c.id).lock:
            c = self._lives.current(ref, c.id)
            if c.state.status != Status.PAUSED:
                raise Conflict(f"Container {c.id} is not paused")
            try:
                await self._rt.resume_task(c.id)
            except (rt.NotFound, rt.FailedPrecondition):
                raise Conflict(f"Container {c.id} is not running") from None
            c.state.unpause()
            if c.health is not None:
                self._health.start(c.id, c.config, c.health, c.state.started_at or time.time())
            await self._store.save(c)
        self._events.container(c, "unpause")

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        """`ps` on the host, cut down to the container's processes (what dockerd does)."""
        c = self._store.get(ref)
        if not c.state.running:
            raise not_running(c.id, c.state.status)
        pids = set(await self._rt.task_pids(c.id))
        args = ps_args.split() or ["-ef"]
        # As dockerd: the container's processes selected by `-q`, so that ps options that select nothing of
        # their own (`-o pid,args`, which lists only processes on ps's terminal) still list them; options ps
        # cannot combine with -q (`f`) are tried alone, the output cut down below either way.
        code, out, err = await _ps(*args, "-q", ",".join(str(p) for p in sorted(pids)))
        if code:
            code, out, err = await _ps(*args)
        if code:
            raise InvalidArgument(f"ps: {err.decode(errors='replace').strip()}")
        lines = out.decode(errors="replace").splitlines()
        titles = lines[0].split() if lines else []
        if "PID" not in titles:
            # The caller's ps_args chose the columns (`-o comm`, `--help`): their request, not our fault.
            raise InvalidArgument("Couldn't find PID field in ps output")
        column = titles.index("PID")
        processes = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
                processes.append(fields)
        self._events.container(c, "top")
        return {"Titles": titles, "Processes": processes}

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self._store.get(ref)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        # Without a terminal there is nothing to resize: containerd's shim says yes and does nothing, so
        # dockerd answers 200 with its event; the CLI resizes every attached container.
        if c.config.get("Tty"):
            await self._rt.resize_task(c.id, height, width)
        self._events.container(c, "resize", height=str(height), width=str(width))


async def _ps(*args: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec("ps", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out, err
