"""Run control: start, stop, kill, restart, the handling of exits, wait, remove and attach.

A container is a runtime container (rootfs snapshot + spec) with the same 64-hex id; each run of it is a
runtime task, deleted once it has exited so that the writable snapshot stays for the next start. Every step
here holds the container's lock (see live.py), so an exit is always matched to the run it ended, by its pid.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from engine.containers import links, mounts, propagation
from engine.containers.departures import Departures
from engine.containers.exitcodes import start_failure_code
from engine.containers.health import Health, HealthMonitor, config_of
from engine.containers.linkedit import LinkEditor
from engine.containers.live import Live, Lives, next_start, settle
from engine.containers.pins import RunPins
from engine.containers.state import Status
from engine.containers.stdin import keeps_stdin_open
from engine.containers.stopping import signal_until_gone, stop_terms
from engine.containers.store import Container, ContainerStore
from engine.containers.supervise import Supervisor
from engine.containers.waits import WaitCondition, waiter
from engine.errors import Conflict, EngineError, NotModified
from engine.events import EventBus
from engine.logs.service import ContainerLogs
from engine.networks.etcfiles import EtcConfig
from engine.networks.service import NetworkService
from engine.runtimes import RuntimeTable
from engine.volumes.service import VolumeService
from runtime import client as rt
from runtime.client.attach import Attachment
from runtime.client.records import CreatedTask
from runtime.client.signals import parse_signal

log = logging.getLogger("engine.containers")

# How long `kill` (SIGKILL) waits to see the container down, so a following `rm` finds it stopped.
_KILL_SETTLE = 10.0


class RunControl:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore, lives: Lives, events: EventBus,
                 networks: NetworkService, volumes: VolumeService, supervisor: Supervisor,
                 logs: ContainerLogs, pins: RunPins, runtimes: RuntimeTable, departures: Departures,
                 link_editor: LinkEditor) -> None:
        self._rt = runtime
        self._link_editor = link_editor
        self._departures = departures
        self._runtimes = runtimes
        self.logs = logs
        self._store = store
        self._lives = lives
        self._events = events
        self._networks = networks
        self._volumes = volumes
        self._supervisor = supervisor
        self._pins = pins
        self.health = HealthMonitor(runtime, self._health_changed, self._told)

    def run_over(self, c: Container) -> asyncio.Event | None:
        """What ends `logs -f` for the current run; None if nothing runs."""
        return self._lives.of(c.id).run_over if c.state.running else None

    async def _health_changed(self, cid: str, health: Health, before: str) -> None:
        await self._supervisor.health_changed(cid, health, before, self)

    def _told(self, cid: str, action: str, attributes: dict[str, str]) -> None:
        c = self._store.find(cid)
        if c is not None:
            self._events.container(c, action, **attributes)

    # start ---------------------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self._store.get(ref)
        live = self._lives.of(c.id)
        async with live.lock:
            c = self._lives.current(ref, c.id)
            if c.state.status == Status.PAUSED:
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.state.running or c.state.status == Status.RESTARTING:
                # dockerd counts a restarting container as running: its restart loop goes on untouched.
                raise NotModified("container already started")
            if c.state.status == Status.REMOVING:
                raise Conflict(f"container {c.id} is marked for removal and cannot be started")
            self._supervisor.cancel(c, live)
            self._supervisor.renew(c, live)
            await self.start_locked(c, live)

    async def start_locked(self, c: Container, live: Live) -> None:
        tty = bool(c.config.get("Tty"))
        try:
            for v in c.volumes:
                await self._volumes.prepare(v["name"])
                # Docker's local volumes carry no propagation of their own: dockerd reports it empty.
                self._events.volume("mount", v["name"], {"container": c.id, "destination": v["destination"],
                                                         "propagation": "",
                                                         "read/write": str(not v["read_only"]).lower()})
            if self._networks.is_host(c.host_config.get("NetworkMode") or "default"):
                await self._networks.files.endpointless(c.id, EtcConfig.of(c.id, c.config, c.host_config))
            if c.unplanned_network is not None:
                await self._networks.plan(c.id, c.host_config.get("NetworkMode") or "", c.unplanned_network or None)
                c.unplanned_network = None
                await self._store.save(c)
            binary = self._runtimes.binary(c.host_config.get("Runtime"))
            if c.host_config.get("Binds"):
                await asyncio.to_thread(mounts.create_bind_sources, list(c.host_config["Binds"]))
            await propagation.check_host(c.host_config)
            await self._pins.prepare(c)
            await self.logs.open(c)
            # A link to a container that does not run fails the start (a `run --rm` waits on that).
            linked = links.resolve(c, self._store.find, self._networks.bridge_address)
        except EngineError as e:
            await self._release(c, network=False)  # the volumes mounted so far, as dockerd's clean-up
            await self._start_failed(c, live, e)
            raise
        # netavark wires the namespace while the runtime creates the task that joins it.
        netns_ready = asyncio.Event()
        wiring = asyncio.ensure_future(self._networks.start(
            c.id, etc=EtcConfig.of(c.id, c.config, c.host_config, linked.hosts),
            exposed=list(c.config.get("ExposedPorts") or {}), port_bindings=c.host_config.get("PortBindings"),
            publish_all=bool(c.host_config.get("PublishAllPorts")), netns_ready=netns_ready,
            mode=c.host_config.get("NetworkMode") or ""))
        waiter = asyncio.ensure_future(netns_ready.wait())
        await asyncio.wait({wiring, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if wiring.done() and (refused := wiring.exception()) is not None:
            # Nothing was created (a port taken, no namespace); still a failed start, which a `run --rm` waits on.
            if isinstance(refused, (rt.RuntimeError_, EngineError)):
                await self._release(c)
                await self._start_failed(c, live, refused)
            await wiring
        live.task_deleted = live.oom_told = False
        try:
            task = await self._create_task(c.id, tty, bool(c.config.get("OpenStdin")), linked.env,
                                           keep_stdin_open=keeps_stdin_open(c.config),
                                           binary=binary)
        except rt.RuntimeError_ as e:
            wired = (await asyncio.gather(wiring, return_exceptions=True))[0]
            await self._release(c)
            if isinstance(wired, BaseException):
                raise wired from None  # the network failed first; the task only lost its namespace
            await self._start_failed(c, live, e)
            raise
        try:
            await wiring
        except BaseException as e:
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.delete_task(c.id, force=True)
            await self._release(c)
            if isinstance(e, (rt.RuntimeError_, EngineError)):
                await self._start_failed(c, live, e)  # a failed start, which a `run --rm` waits on
            raise
        try:
            io = task.io
            size = c.host_config.get("ConsoleSize") or []
            if tty and len(size) == 2 and size[0] > 0 and size[1] > 0:
                await self._rt.resize_task(c.id, size[0], size[1])
            await live.hand_over(io.attach_socket)
            await self._rt.start_task(c.id)
        except rt.RuntimeError_ as e:
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.delete_task(c.id, force=True)
            await self._release(c)
            await self._start_failed(c, live, e)
            raise
        c.log_path, c.rootfs = io.log_path, task.rootfs
        self.logs.ship(c)
        live.run_over = asyncio.Event()
        c.state.start(task.pid, time.time())
        # dockerd keeps the last results across runs; the status starts over.
        c.health = Health(Log=c.health.Log if c.health else []) if config_of(c.config) else None
        await self._store.save(c)
        self._events.container(c, "start")
        if c.health is not None:
            self.health.start(c.id, c.config, c.health, c.state.started_at or time.time())
        log.info("started container=%s pid=%d", c.id, task.pid)
        await self._link_editor.started(c)

    async def _release(self, c: Container, network: bool = True) -> None:
        """What a run held, given back as dockerd's cleanup does: the networks, then the volumes, then the pins."""
        if network:
            await self._networks.stop(c.id, mode=c.host_config.get("NetworkMode") or "")
        for v in c.volumes:
            self._events.volume("unmount", v["name"], {"container": c.id})
            await self._volumes.release(v["name"], leaving=c.id)
        await self._pins.release(c.id)

    async def _create_task(self, cid: str, tty: bool, stdin: bool, env: list[str], *,
                           keep_stdin_open: bool, binary: tuple[str, list[str]] | None) -> CreatedTask:
        path, args = binary or (None, [])
        try:
            return await self._rt.create_task(cid, terminal=tty, stdin=stdin, keep_stdin_open=keep_stdin_open, env=env,
                                              runtime_binary=path, runtime_args=args)
        except rt.AlreadyExists:
            # A run whose exit was recorded but whose task could not be deleted then.
            await self._rt.delete_task(cid, force=True)
            return await self._rt.create_task(cid, terminal=tty, stdin=stdin, keep_stdin_open=keep_stdin_open, env=env,
                                              runtime_binary=path, runtime_args=args)

    async def _start_failed(self, c: Container, live: Live, e: rt.RuntimeError_ | EngineError) -> None:
        code = start_failure_code(e.message)
        log.info("start of container=%s failed (exit code %d): %s", c.id, code, e.message)
        c.state.start_failed(code, e.message)  # dockerd tells of no `die`: nothing ran
        settle(live.attachers, None)
        if c.host_config.get("AutoRemove"):
            await self._remove_locked(c, live, volumes=True)
        else:
            await self._store.save(c)

    # stop, kill, restart -------------------------------------------------

    async def stop(self, ref: str, timeout: int | None, sig: str | None = None) -> None:
        c = self._store.get(ref)
        live = self._lives.of(c.id)
        stopping = live.stopping
        if stopping is not None and not stopping.done():
            await signal_until_gone(self._rt, self._events, c, *stop_terms(c, timeout, sig), stopping)
            async with live.lock:  # the first stop has handled the exit
                self._events.container(c, "stop")
            return
        async with live.lock:
            c = self._lives.current(ref, c.id)
            c.state.manually_stopped = True
            if c.state.status == Status.RESTARTING:
                self._supervisor.cancel(c, live)
                await self._store.save(c)
                self._events.container(c, "stop")
                return
            if not c.state.running:
                await self._store.save(c)
                raise NotModified("container already stopped")
            await self._stop_locked(c, live, timeout, sig, autoremove=True)

    async def _stop_locked(self, c: Container, live: Live, timeout: int | None, sig: str | None, *,
                           autoremove: bool) -> None:
        signum, wait = stop_terms(c, timeout, sig)
        pid = c.state.pid
        # Never cancelled (a cancelled runtime call would waste its connection): it ends with the process.
        reaped = live.stopping = asyncio.ensure_future(self._reap(c.id))
        await signal_until_gone(self._rt, self._events, c, signum, wait, reaped)
        code, at = await reaped
        await self._exited_locked(c, live, pid, code, at, autoremove=False)
        self._events.container(c, "stop")
        if autoremove and c.host_config.get("AutoRemove"):
            await self._remove_locked(c, live, volumes=True)

    async def _reap(self, cid: str) -> tuple[int, float]:
        try:
            status = await self._rt.wait_task(cid)
        except rt.NotFound:
            # Deleted under us: nobody knows the code any more.
            return 255, time.time()
        return status.exit_status, status.exited_at

    async def kill(self, ref: str, sig: str | None) -> None:
        c = self._store.get(ref)
        signum = parse_signal(sig or "KILL")
        if c.state.status == Status.RESTARTING:
            # No process to signal, as in dockerd: the kill ends the restart loop (with any signal).
            live = self._lives.of(c.id)
            async with live.lock:
                c = self._lives.current(ref, c.id)
                if c.state.status == Status.RESTARTING:
                    c.state.manually_stopped = True
                    self._supervisor.cancel(c, live)
                    await self._store.save(c)
                    return
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        # dockerd's rule: KILL, the container's StopSignal, or any signal when it has none, ends it for its
        # user (a restart policy leaves it ended, a paused one is thawed to act on it).
        stop_signal = c.config.get("StopSignal")
        ending = signum == signal.SIGKILL or not stop_signal or signum == parse_signal(stop_signal)
        if ending:
            c.state.manually_stopped = True
        run_over = self._lives.of(c.id).run_over
        try:
            await self._rt.kill_task(c.id, signum)
        except rt.NotFound:
            pass  # it ended as the kill came: done, as dockerd takes "no such process"
        except rt.FailedPrecondition:
            raise Conflict(f"Container {c.id} is not running") from None
        self._events.container(c, "kill", signal=str(signum))
        if c.state.status == Status.PAUSED and ending:
            # As dockerd: a paused container is thawed to act on its signal (a KILL ends it thawed or not).
            with contextlib.suppress(rt.NotFound, rt.FailedPrecondition):
                await self._rt.resume_task(c.id)
                self._events.container(c, "unpause")
                if signum != signal.SIGKILL:
                    c.state.unpause()
                    await self._store.save(c)
        if signum == signal.SIGKILL:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_KILL_SETTLE):
                    await run_over.wait()

    async def restart(self, ref: str, timeout: int | None, sig: str | None = None) -> None:
        c = self._store.get(ref)
        live = self._lives.of(c.id)
        async with live.lock:
            c = self._lives.current(ref, c.id)
            self._supervisor.cancel(c, live)
            c.state.manually_stopped = True
            if c.state.running:
                # Restarting is not the end of an --rm container.
                await self._stop_locked(c, live, timeout, sig, autoremove=False)
            self._supervisor.renew(c, live)
            await self.start_locked(c, live)
            self._events.container(c, "restart")

    # exits ---------------------------------------------------------------

    def handle_oom(self, cid: str) -> None:
        """An OOM kill in a running container's cgroup (its init, a child, an exec): dockerd's `oom`, once."""
        if (c := self._store.find(cid)) is not None and c.state.running:
            self._lives.of(cid).oom_told = True
            self._events.container(c, "oom")

    async def handle_exit(self, cid: str, pid: int, code: int, at: float, oom: bool | None = None, *,
                          policy: bool = True) -> None:
        """A task exited (the runtime's /tasks/exit, or found by reconcile); `oom` if the exit told of it. Without
        `policy` (an exit found at engine start) the restart policy is left to the engine's start, uncounted."""
        if self._store.find(cid) is None:
            return
        live = self._lives.of(cid)
        async with live.lock:
            c = self._store.find(cid)
            if c is not None:
                await self._exited_locked(c, live, pid, code, at, autoremove=True, oom=oom, policy=policy)

    async def _exited_locked(self, c: Container, live: Live, pid: int, code: int, at: float, *,
                             autoremove: bool, oom: bool | None = None, policy: bool = True) -> None:
        if not c.state.running or c.state.pid != pid:
            return  # already recorded, or the exit of an earlier run
        removing = autoremove and bool(c.host_config.get("AutoRemove"))
        if oom is None or not removing:
            # Kept for a next run (or its OOM kill unknown): the task goes now. An --rm container's goes with it.
            oom = await self._delete_exited(c, live)
        self.health.stop(c.id, c.health)
        if oom and not live.oom_told:  # dockerd tells of the OOM kill as it happens, before the exit's clean-up
            self._events.container(c, "oom")
        # dockerd (since 23.0) releases the network and volumes before it reports the death.
        await self._release(c)
        ran = max(0, int(at - (c.state.started_at or at)))
        c.state.exit(code, at, oom)
        # conmon wrote all of the run's output before its exit was known: the driver's files get the rest first.
        self.logs.ship(c)
        await self.logs.drain(c.id)
        live.run_over.set()
        if not removing:
            # An --rm container's record goes in a moment; should the engine stop first, its next start
            # finds the task exited and removes the container then.
            await self._store.save(c)
        self._events.container(c, "die", exitCode=str(code), execDuration=str(ran))
        log.info("container=%s exited with %d", c.id, code)
        settle(live.exits, code)
        if removing:
            await self._remove_locked(c, live, volumes=True, runtime_later=True)
        elif autoremove and policy:
            await self._supervisor.after_exit(c, live, at, self)

    async def _delete_exited(self, c: Container, live: Live) -> bool:
        """Delete the task of a run that has ended; whether its cgroup saw an OOM kill."""
        try:
            oom = (await self._rt.delete_task(c.id)).oom_killed
            live.task_deleted = True
            return oom
        except rt.NotFound:
            live.task_deleted = True
        except rt.RuntimeError_ as e:
            # The next start deletes it (see _create_task); the exit itself is certain.
            log.warning("could not delete the exited task of container=%s: %s", c.id, e.message)
            with contextlib.suppress(rt.RuntimeError_):
                return (await self._rt.task(c.id)).oom_killed
        return False

    # wait ----------------------------------------------------------------

    def wait(self, ref: str, condition: WaitCondition) -> asyncio.Future[int]:
        return waiter(c := self._store.get(ref), self._lives.of(c.id), condition)

    # remove --------------------------------------------------------------

    async def remove(self, ref: str, force: bool, volumes: bool = False) -> None:
        c = self._store.get(ref)
        live = self._lives.of(c.id)
        if force and c.state.running and live.lock.locked():
            # A `docker stop` may hold the lock for its whole timeout: a forced removal does not wait it out.
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.kill_task(c.id, signal.SIGKILL, all=True)
        async with live.lock:
            c = self._lives.current(ref, c.id)
            if c.state.running:
                if not force:
                    paused = c.state.status == Status.PAUSED
                    raise Conflict(f"You cannot remove a {'paused' if paused else 'running'} container {c.id}. "
                                   f"{'Unpause and then stop' if paused else 'Stop'} the container before "
                                   "attempting removal or force remove")
                if c.state.status == Status.PAUSED:
                    with contextlib.suppress(rt.RuntimeError_):
                        await self._rt.resume_task(c.id)
                pid = c.state.pid
                # A forced task delete kills the process and reaps it in one call; dockerd tells of its SIGKILL.
                self._events.container(c, "kill", signal=str(int(signal.SIGKILL)))
                try:
                    status = await self._rt.delete_task(c.id, force=True)
                    code, at = status.exit_status, status.exited_at
                except rt.NotFound:
                    code, at = 255, time.time()
                await self._exited_locked(c, live, pid, code, at, autoremove=False)
            if c.state.status == Status.REMOVING:
                raise Conflict(f"removal of container {c.id} is already in progress")
            if c.state.status == Status.RESTARTING:
                if not force:
                    raise Conflict(f"You cannot remove a restarting container {c.id}. Stop the container before "
                                   "attempting removal or force remove")
                self._supervisor.cancel(c, live)
            await self._remove_locked(c, live, volumes=volumes)

    async def _remove_locked(self, c: Container, live: Live, *, volumes: bool, runtime_later: bool = False) -> None:
        """Remove `c`. The runtime's part comes first, so that a failure leaves the container Dead; with
        `runtime_later` (an --rm container's end) it comes once the container's waiters have their answer
        (departures.py), and so does putting its logs away (kept for `docker logs`, or deleted)."""
        c.state.removing()
        if not runtime_later:
            try:
                if not live.task_deleted:
                    with contextlib.suppress(rt.NotFound):
                        await self._rt.delete_task(c.id, force=True)
                with contextlib.suppress(rt.NotFound):
                    await self._rt.remove_container(c.id)
            except BaseException:
                c.state.status = Status.DEAD
                await self._store.save(c)
                raise
            await self.logs.forget(c, record=c.model_dump(mode="json"))
        await self._networks.forget(c.id)
        await self._pins.forget(c.id)
        await self._store.delete(c)
        if volumes:
            for v in c.volumes:
                if v["anonymous"]:
                    with contextlib.suppress(EngineError):
                        await self._volumes.remove(v["name"])
                        self._events.volume("destroy", v["name"])
        # dockerd removes the volumes before it reports the container destroyed.
        self._events.container(c, "destroy")
        self._lives.forget(c.id)
        log.info("removed container=%s", c.id)
        settle(live.removals, c.state.exit_code)
        settle(live.exits, c.state.exit_code)
        settle(live.attachers, None)
        if runtime_later:
            self._departures.remove(c.id, task=not live.task_deleted)
            self.logs.forget_soon(c, record=c.model_dump(mode="json"))

    # attach --------------------------------------------------------------

    async def attachment(self, c: Container) -> Attachment | None:
        """A connection to the container process's stdio, made before it can write a byte the caller would miss.

        A running container's is made now; otherwise at the next start, just before the process
        runs. None if the process has already gone, the start fails or the container is removed.
        """
        got = await self.attach_now_or_later(c)
        return await self.next_start(got) if isinstance(got, asyncio.Future) else got

    async def attach_now_or_later(self, c: Container) -> Attachment | asyncio.Future[Attachment | None] | None:
        """attachment() without its wait: a running container's stdio connected now, or a future its next start
        fulfils, registered before this returns (a client answered now starts the container, maybe at once)."""
        live = self._lives.of(c.id)
        async with live.lock:
            current = self._store.find(c.id)
            if current is None:
                return None
            self._events.container(current, "attach")
            if current.state.running:
                try:
                    return await Attachment.connect((await self._rt.task_io(c.id)).attach_socket)
                except (rt.NotFound, rt.FailedPrecondition):
                    return None
            fut: asyncio.Future[Attachment | None] = asyncio.get_running_loop().create_future()
            live.attachers.append(fut)
            return fut

    next_start = staticmethod(next_start)
