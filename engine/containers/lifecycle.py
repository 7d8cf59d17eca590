"""Docker's container lifecycle over the runtime's containers and tasks.

A container is a runtime container (rootfs snapshot + spec) with the same 64-hex
id; each run of it is a runtime task, deleted once it has exited so that the
writable snapshot stays for the next start. Operations that change a container's
state take its lock, and so does the handling of its exits, so they apply in order
and an exit is always matched to the run it ended (by the task's pid).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from engine.containers import names
from engine.containers.exitcodes import start_failure_code
from engine.containers.health import ON_FAILURE_ACTIONS, ON_FAILURE_LABEL, Health, HealthMonitor, config_of
from engine.containers.images import Images
from engine.containers.options import (
    CreateRequest,
    RestartPolicyModel,
    hostname_for,
    inspect_config,
    inspect_host_config,
    parse_signal,
    runtime_options,
    volume_mounts,
)
from engine.containers.resources import UpdateRequest, merged, restart_policy, runtime_resources
from engine.containers.restarts import Backoff, should_restart
from engine.containers.state import Status
from engine.containers.store import Container, ContainerStore
from engine.errors import Conflict, EngineError, InvalidArgument, NotFound, NotModified
from engine.events import EventBus
from engine.networks.ports import requested as requested_ports
from engine.networks.service import NetworkService
from engine.volumes.service import VolumeService
from runtime import client as rt
from runtime.client.attach import Attachment

log = logging.getLogger("engine.containers")

DEFAULT_STOP_TIMEOUT = 10
# How long `kill` (SIGKILL) waits to see the container down, so a following `rm` finds it stopped.
_KILL_SETTLE = 10.0
# The runtime runs `--init` containers under its init; Path/Args show the user's command.
_RUNTIME_INIT = "/sbin/pyengine-init"

T = TypeVar("T")


class WaitCondition(str, Enum):
    NOT_RUNNING = "not-running"
    NEXT_EXIT = "next-exit"
    REMOVED = "removed"


@dataclass(eq=False)
class _Live:
    """In-memory companions of a container: its lock and whoever waits on it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    exits: list[asyncio.Future[int]] = field(default_factory=list)
    removals: list[asyncio.Future[int]] = field(default_factory=list)
    attachers: list[asyncio.Future[Attachment | None]] = field(default_factory=list)
    # Set when the current run ends: `logs -f` stops there.
    run_over: asyncio.Event = field(default_factory=asyncio.Event)
    backoff: Backoff = field(default_factory=Backoff)
    # Set when a healthcheck's on-failure action asked for a restart: the next exit restarts, whatever the policy.
    health_restart: bool = False
    restart: asyncio.Task[None] | None = None  # a restart policy's pending start


def _settle(futures: list[asyncio.Future[T]], value: T) -> None:
    for f in futures:
        if not f.done():
            f.set_result(value)
    futures.clear()


class ContainerService:
    def __init__(self, runtime: rt.Client, store: ContainerStore, images: Images, events: EventBus,
                 networks: NetworkService, volumes: VolumeService) -> None:
        self._rt = runtime
        self._store = store
        self._images = images
        self._events = events
        self._networks = networks
        self._volumes = volumes
        self._policies: asyncio.Task[None] | None = None  # the one pass over restart policies at engine start
        self._health = HealthMonitor(runtime, self._health_changed)
        self._background: set[asyncio.Task[None]] = set()
        self._lives: dict[str, _Live] = {}
        # Told the id of every removed container (execs forget theirs).
        self.on_removed: list[Callable[[str], None]] = []

    # lookups -------------------------------------------------------------

    def get(self, ref: str) -> Container:
        return self._store.get(ref)

    def find(self, cid: str) -> Container | None:
        return self._store.find(cid)

    def list(self) -> list[Container]:
        return self._store.all()

    def name_of(self, cid: str) -> str:
        c = self._store.find(cid)
        return c.name if c is not None else cid[:12]

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self._store.all() if any(v["name"] == name for v in c.volumes)]

    def _live(self, cid: str) -> _Live:
        live = self._lives.get(cid)
        if live is None:
            live = self._lives[cid] = _Live()
        return live

    def _current(self, ref: str, cid: str) -> Container:
        """The container again after waiting for its lock: it may have been removed meanwhile."""
        c = self._store.find(cid)
        if c is None:
            raise NotFound(f"No such container: {ref}")
        return c

    def run_over(self, c: Container) -> asyncio.Event | None:
        """What ends `logs -f` for the current run; None if nothing runs."""
        return self._live(c.id).run_over if c.state.running else None

    # create --------------------------------------------------------------

    async def create(self, name: str | None, req: CreateRequest) -> Container:
        bare = names.validate(name) if name else None
        image = await self._images.resolve(req.Image or "")
        cid = secrets.token_hex(32)
        if bare is None:
            bare = names.generate(self._store.name_taken)
        self._store.reserve(bare, cid)
        volumes: list[dict[str, Any]] = []
        try:
            policy = restart_policy(req.HostConfig.RestartPolicy or RestartPolicyModel())
            if req.HostConfig.AutoRemove and policy["Name"] != "no":
                raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
            on_failure = (req.Labels or {}).get(ON_FAILURE_LABEL)
            if on_failure is not None and on_failure not in ON_FAILURE_ACTIONS:
                raise InvalidArgument(f"invalid {ON_FAILURE_LABEL} {on_failure!r}: use one of "
                                      f"{', '.join(ON_FAILURE_ACTIONS)}")
            hostname = hostname_for(req, cid)
            options = runtime_options(req, hostname)
            config = inspect_config(req, image, hostname)
            requested_ports(config.get("ExposedPorts") or {}, inspect_host_config(req)["PortBindings"],
                            bool(req.HostConfig.PublishAllPorts))
            options["netns"] = await self._plan_network(cid, req)
            etc_of = self._etc_owner(cid, req)
            if etc_of is not None:
                options["mounts"] = options["mounts"] + self._networks.etc_mounts(etc_of)
            volumes, mounts = await self._plan_volumes(req, image.config.get("Volumes"))
            options["mounts"] = options["mounts"] + mounts
            record = await self._rt.create_container(cid, image.ref, options, init=bool(req.HostConfig.Init))
        except BaseException:
            self._store.release(bare, cid)
            await self._networks.forget(cid)
            for v in volumes:
                if v["anonymous"]:
                    with contextlib.suppress(EngineError):
                        await self._volumes.remove(v["name"])
            raise
        args = list(record["spec"]["process"]["args"])
        if args and args[0] == _RUNTIME_INIT and "--" in args:
            args = args[args.index("--") + 1:]
        c = Container(id=cid, name=bare, created=time.time(), image=req.Image or "", image_ref=image.ref,
                      image_id=image.id, path=args[0] if args else "", args=args[1:], config=config,
                      host_config=inspect_host_config(req), volumes=volumes)
        await self._store.save(c)
        self._events.container(c, "create")
        log.info("created container=%s name=%s image=%s", cid, bare, image.ref)
        return c

    async def _plan_network(self, cid: str, req: CreateRequest) -> str | None:
        """The runtime's netns option; the endpoints are recorded now, wired at each start."""
        mode = req.HostConfig.NetworkMode or "default"
        if mode.startswith("container:"):
            other = self.get(mode.split(":", 1)[1])
            return "host" if other.host_config.get("NetworkMode") == "host" else self._networks.joined_netns(other.id)
        endpoints = (req.NetworkingConfig or {}).get("EndpointsConfig")
        if endpoints is not None and not isinstance(endpoints, dict):
            raise InvalidArgument("NetworkingConfig.EndpointsConfig must be an object")
        return await self._networks.plan(cid, mode, endpoints)

    def _etc_owner(self, cid: str, req: CreateRequest) -> str | None:
        """Whose /etc/hosts and resolv.conf the container sees: its own when networked, its host's in container mode."""
        mode = req.HostConfig.NetworkMode or "default"
        if mode.startswith("container:"):
            other = self.get(mode.split(":", 1)[1])
            return other.id if self._networks.wired(other.id) else None
        return cid if self._networks.wired(cid) else None

    async def _plan_volumes(self, req: CreateRequest,
                            image_volumes: dict[str, Any] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The volumes (made now when new, as Docker does) and their spec mounts."""
        resolved, mounts = [], []
        for want in volume_mounts(req, image_volumes):
            fresh = want["name"] is None or self._volumes.store.find(want["name"]) is None
            v = await self._volumes.create(want["name"], anonymous=want["name"] is None)
            resolved.append({"name": v.name, "destination": want["destination"], "read_only": want["read_only"],
                             "anonymous": v.anonymous and want["name"] is None})
            if fresh:
                self._events.publish("volume", "create", v.name, {"driver": v.driver})
            mode = "ro" if want["read_only"] else "rw"
            mounts.append({"type": "bind", "source": self._volumes.mountpoint(v.name),
                           "destination": want["destination"], "options": ["rbind", mode], "copy_up": want["copy"]})
        return resolved, mounts

    async def connect(self, ref: str, network_id: str, cfg: dict[str, Any]) -> None:
        c = self.get(ref)
        async with self._live(c.id).lock:
            c = self._current(ref, c.id)
            await self._networks.connect(network_id, c.id, cfg, running=c.state.running,
                                         hostname=c.config.get("Hostname") or c.id[:12],
                                         domainname=c.config.get("Domainname") or "")

    async def disconnect(self, ref: str, network_id: str) -> None:
        c = self.get(ref)
        async with self._live(c.id).lock:
            c = self._current(ref, c.id)
            await self._networks.disconnect(network_id, c.id, running=c.state.running)

    # start ---------------------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        live = self._live(c.id)
        async with live.lock:
            c = self._current(ref, c.id)
            if c.state.status == Status.PAUSED:
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.state.running:
                raise NotModified("container already started")
            if c.state.status == Status.REMOVING:
                raise Conflict(f"container {c.id} is marked for removal and cannot be started")
            self._cancel_restart(c, live)
            c.state.manually_stopped, c.restart_count = False, 0
            await self._start_locked(c, live)

    async def _start_locked(self, c: Container, live: _Live) -> None:
        tty = bool(c.config.get("Tty"))
        for v in c.volumes:
            await self._volumes.prepare(v["name"])
        # netavark wires the namespace while the runtime creates the task that joins it.
        netns_ready = asyncio.Event()
        wiring = asyncio.ensure_future(self._networks.start(
            c.id, hostname=c.config.get("Hostname") or c.id[:12], domainname=c.config.get("Domainname") or "",
            exposed=list(c.config.get("ExposedPorts") or {}), port_bindings=c.host_config.get("PortBindings"),
            publish_all=bool(c.host_config.get("PublishAllPorts")), netns_ready=netns_ready))
        waiter = asyncio.ensure_future(netns_ready.wait())
        await asyncio.wait({wiring, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if wiring.done() and wiring.exception() is not None:
            await wiring  # the namespace itself could not be made: nothing was created
        try:
            task = await self._create_task(c.id, tty, bool(c.config.get("OpenStdin")))
        except rt.RuntimeError_ as e:
            wired = (await asyncio.gather(wiring, return_exceptions=True))[0]
            await self._networks.stop(c.id)
            if isinstance(wired, BaseException):
                raise wired from None  # the network failed first; the task only lost its namespace
            await self._start_failed(c, live, e)
            raise
        try:
            await wiring
        except BaseException:
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.delete_task(c.id, force=True)
            await self._networks.stop(c.id)
            raise
        try:
            io = await self._rt.task_io(c.id)
            size = c.host_config.get("ConsoleSize") or []
            if tty and len(size) == 2 and size[0] > 0 and size[1] > 0:
                await self._rt.resize_task(c.id, size[0], size[1])
            await self._hand_over(live, io["attach_socket"])
            await self._rt.start_task(c.id)
        except rt.RuntimeError_ as e:
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.delete_task(c.id, force=True)
            await self._networks.stop(c.id)
            await self._start_failed(c, live, e)
            raise
        c.log_path = io["log_path"]
        live.run_over = asyncio.Event()
        c.state.start(task["pid"], time.time())
        c.health = Health() if config_of(c.config) else None
        await self._store.save(c)
        self._events.container(c, "start")
        if c.health is not None:
            self._health.start(c.id, c.config, c.health, c.state.started_at or time.time())
        log.info("started container=%s pid=%d", c.id, task["pid"])

    async def _create_task(self, cid: str, tty: bool, stdin: bool) -> dict[str, Any]:
        try:
            return await self._rt.create_task(cid, terminal=tty, stdin=stdin)
        except rt.AlreadyExists:
            # A run whose exit was recorded but whose task could not be deleted then.
            await self._rt.delete_task(cid, force=True)
            return await self._rt.create_task(cid, terminal=tty, stdin=stdin)

    async def _hand_over(self, live: _Live, socket: str) -> None:
        """Connect every attach waiting for this start, before the process can write a byte."""
        for fut in live.attachers:
            if fut.done():
                continue
            try:
                fut.set_result(await Attachment.connect(socket))
            except rt.RuntimeError_ as e:
                log.warning("attach to %s failed: %s", socket, e.message)
                fut.set_result(None)
        live.attachers.clear()

    async def _start_failed(self, c: Container, live: _Live, e: rt.RuntimeError_) -> None:
        code = start_failure_code(e.message)
        log.info("start of container=%s failed (exit code %d): %s", c.id, code, e.message)
        c.state.start_failed(code, e.message)
        self._events.container(c, "die", exitCode=str(code))
        _settle(live.attachers, None)
        if c.host_config.get("AutoRemove"):
            await self._remove_locked(c, live, volumes=True)
        else:
            await self._store.save(c)

    # stop, kill, restart -------------------------------------------------

    async def stop(self, ref: str, timeout: int | None, sig: str | None = None) -> None:
        c = self.get(ref)
        live = self._live(c.id)
        async with live.lock:
            c = self._current(ref, c.id)
            c.state.manually_stopped = True
            if c.state.status == Status.RESTARTING:
                self._cancel_restart(c, live)
                await self._store.save(c)
                self._events.container(c, "stop")
                return
            if not c.state.running:
                await self._store.save(c)
                raise NotModified("container already stopped")
            await self._stop_locked(c, live, timeout, sig, autoremove=True)

    def _stop_timeout(self, c: Container, timeout: int | None) -> int:
        if timeout is not None:
            return timeout
        configured = c.config.get("StopTimeout")
        return DEFAULT_STOP_TIMEOUT if configured is None else configured

    async def _stop_locked(self, c: Container, live: _Live, timeout: int | None, sig: str | None, *,
                           autoremove: bool) -> None:
        signum = parse_signal(sig or c.config.get("StopSignal") or "SIGTERM")
        wait = self._stop_timeout(c, timeout)
        if c.state.status == Status.PAUSED:
            # A frozen process gets no signal: thaw it so it can act on the one it is sent.
            await self._rt.resume_task(c.id)
            c.state.unpause()
        pid = c.state.pid
        # Never cancelled (a cancelled runtime call would waste its connection): it ends with the process.
        reaped = asyncio.ensure_future(self._reap(c.id))
        with contextlib.suppress(rt.FailedPrecondition, rt.NotFound):
            await self._rt.kill_task(c.id, signum)
            self._events.container(c, "kill", signal=str(signum))
        done, _ = await asyncio.wait({reaped}, timeout=wait if wait >= 0 else None)
        if not done:
            log.info("container=%s still running %ds after signal %d: killing it", c.id, wait, signum)
            with contextlib.suppress(rt.FailedPrecondition, rt.NotFound):
                await self._rt.kill_task(c.id, signal.SIGKILL, all=True)
                self._events.container(c, "kill", signal=str(int(signal.SIGKILL)))
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
        return status["exit_status"], status["exited_at"]

    async def kill(self, ref: str, sig: str | None) -> None:
        c = self.get(ref)
        signum = parse_signal(sig or "KILL")
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        if signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            # Ended by its user: a restart policy leaves it ended, as dockerd does.
            c.state.manually_stopped = True
        run_over = self._live(c.id).run_over
        try:
            await self._rt.kill_task(c.id, signum)
            if c.state.status == Status.PAUSED and signum == signal.SIGKILL:
                await self._rt.resume_task(c.id)
        except (rt.FailedPrecondition, rt.NotFound):
            raise Conflict(f"Container {c.id} is not running") from None
        self._events.container(c, "kill", signal=str(signum))
        if signum == signal.SIGKILL:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_KILL_SETTLE):
                    await run_over.wait()

    async def restart(self, ref: str, timeout: int | None, sig: str | None = None) -> None:
        c = self.get(ref)
        live = self._live(c.id)
        async with live.lock:
            c = self._current(ref, c.id)
            self._cancel_restart(c, live)
            c.state.manually_stopped = True
            if c.state.running:
                # Restarting is not the end of an --rm container.
                await self._stop_locked(c, live, timeout, sig, autoremove=False)
            c.state.manually_stopped, c.restart_count = False, 0
            await self._start_locked(c, live)
            self._events.container(c, "restart")

    # exits ---------------------------------------------------------------

    async def handle_exit(self, cid: str, pid: int, code: int, at: float) -> None:
        """A task exited (the runtime's /tasks/exit, or found by reconcile)."""
        if self._store.find(cid) is None:
            return
        live = self._live(cid)
        async with live.lock:
            c = self._store.find(cid)
            if c is not None:
                await self._exited_locked(c, live, pid, code, at, autoremove=True)

    async def _exited_locked(self, c: Container, live: _Live, pid: int, code: int, at: float, *,
                             autoremove: bool) -> None:
        if not c.state.running or c.state.pid != pid:
            return  # already recorded, or the exit of an earlier run
        oom = False
        try:
            oom = bool((await self._rt.task(c.id)).get("oom_killed"))
            await self._rt.delete_task(c.id)
        except rt.NotFound:
            pass
        except rt.RuntimeError_ as e:
            # The next start deletes it (see _create_task); the exit itself is certain.
            log.warning("could not delete the exited task of container=%s: %s", c.id, e.message)
        self._health.stop(c.id)
        await self._networks.stop(c.id)
        c.state.exit(code, at, oom)
        live.run_over.set()
        await self._store.save(c)
        if oom:
            self._events.container(c, "oom")
        self._events.container(c, "die", exitCode=str(code))
        log.info("container=%s exited with %d", c.id, code)
        _settle(live.exits, code)
        if autoremove and c.host_config.get("AutoRemove"):
            await self._remove_locked(c, live, volumes=True)
        elif autoremove and (live.health_restart or should_restart(c.host_config, c.state, c.restart_count,
                                                                   engine_start=False)):
            live.health_restart = False
            await self._schedule_restart(c, live, live.backoff.delay(at - (c.state.started_at or at)))

    async def reconcile(self) -> None:
        """Line the records up with the runtime's tasks: exits missed while the engine or its event stream was down."""
        tasks = {t["id"]: t for t in await self._rt.tasks()}
        for c in self._store.all():
            t = tasks.get(c.id)
            if c.state.running:
                if t is None:
                    await self.handle_exit(c.id, c.state.pid, 255, time.time())
                elif t["status"] == "stopped":
                    await self.handle_exit(c.id, t["pid"], t["exit_status"], t["exited_at"] or time.time())
                elif t["pid"] != c.state.pid:
                    # A restart whose new run was never recorded: its exit must match it.
                    c.state.pid = t["pid"]
                    await self._store.save(c)
            elif t is not None:
                await self._adopt(c, t)
        await self._networks.reconcile({c.id for c in self._store.all() if c.state.running})
        for c in self._store.all():
            # Probes of containers that ran on while the engine was away start again.
            if c.state.running and config_of(c.config) and not self._health.watching(c.id):
                c.health = c.health or Health()
                self._health.start(c.id, c.config, c.health, c.state.started_at or time.time())
        if self._policies is None:
            self._policies = asyncio.create_task(self.apply_restart_policies(), name="restart-policies")

    async def _adopt(self, c: Container, t: dict[str, Any]) -> None:
        """A task the records do not show running: an engine stopped in the middle of a start or an exit."""
        live = self._live(c.id)
        async with live.lock:
            if t["status"] in ("running", "paused") and c.state.status in (Status.CREATED, Status.EXITED):
                c.state.start(t["pid"], t.get("started_at") or time.time())
                if t["status"] == "paused":
                    c.state.pause()
                if c.log_path is None:
                    c.log_path = (await self._rt.task_io(c.id))["log_path"]
                live.run_over = asyncio.Event()
                await self._store.save(c)
                log.info("adopted running task of container=%s", c.id)
            elif not c.state.running:
                with contextlib.suppress(rt.NotFound):
                    await self._rt.delete_task(c.id, force=True)

    # healthchecks ------------------------------------------------------

    async def _health_changed(self, cid: str, health: Health, before: str) -> None:
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
            task = asyncio.create_task(self._health_action(cid, action), name=f"health-action-{cid[:12]}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _health_action(self, cid: str, action: str) -> None:
        try:
            if action == "stop":
                await self.stop(cid, None)
                return
            if action == "restart":
                self._live(cid).health_restart = True
            await self._rt.kill_task(cid, signal.SIGKILL, all=True)
        except (EngineError, rt.RuntimeError_) as e:
            log.warning("health action %s on container=%s failed: %s", action, cid, getattr(e, "message", e))

    # restart policies --------------------------------------------------

    async def _schedule_restart(self, c: Container, live: _Live, delay: float) -> None:
        c.state.schedule_restart()
        await self._store.save(c)
        log.info("container=%s exited with %d: restarting in %.1fs (policy %s)", c.id, c.state.exit_code, delay,
                 (c.host_config.get("RestartPolicy") or {}).get("Name"))
        live.restart = asyncio.create_task(self._restart_after(c.id, delay), name=f"restart-{c.id[:12]}")

    async def _restart_after(self, cid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        live = self._live(cid)
        async with live.lock:
            c = self._store.find(cid)
            if c is None or c.state.status != Status.RESTARTING:
                return
            live.restart = None
            c.restart_count += 1
            try:
                await self._start_locked(c, live)
            except (EngineError, rt.RuntimeError_) as e:
                log.warning("restart of container=%s failed: %s", cid, getattr(e, "message", e))
                if c.state.status == Status.RESTARTING:
                    c.state.cancel_restart()
                    await self._store.save(c)

    def _cancel_restart(self, c: Container, live: _Live) -> None:
        if live.restart is not None:
            live.restart.cancel()
            live.restart = None
        if c.state.status == Status.RESTARTING:
            c.state.cancel_restart()

    async def apply_restart_policies(self) -> None:
        """At engine start: what a policy wants running again (after a reboot, say) is started."""
        for c in self._store.all():
            # A restart the last engine had scheduled is due now.
            due = c.state.status == Status.RESTARTING or (
                c.state.status == Status.EXITED and c.state.started_at is not None
                and should_restart(c.host_config, c.state, c.restart_count, engine_start=True))
            if due:
                live = self._live(c.id)
                async with live.lock:
                    if self._store.find(c.id) is None or c.state.status not in (Status.EXITED, Status.RESTARTING):
                        continue
                    try:
                        await self._start_locked(c, live)
                    except (EngineError, rt.RuntimeError_) as e:
                        log.warning("start of container=%s at engine start failed: %s", c.id,
                                    getattr(e, "message", e))

    # wait ----------------------------------------------------------------

    def wait(self, ref: str, condition: WaitCondition) -> asyncio.Future[int]:
        """A future for the exit code, registered now: the caller may flush its headers before it resolves."""
        c = self.get(ref)
        live = self._live(c.id)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if condition == WaitCondition.NOT_RUNNING and not c.state.running:
            fut.set_result(c.state.exit_code)
        elif condition == WaitCondition.REMOVED:
            live.removals[:] = [f for f in live.removals if not f.done()] + [fut]
        else:
            live.exits[:] = [f for f in live.exits if not f.done()] + [fut]
        return fut

    # remove, rename ------------------------------------------------------

    async def remove(self, ref: str, force: bool, volumes: bool = False) -> None:
        c = self.get(ref)
        live = self._live(c.id)
        if force and c.state.running and live.lock.locked():
            # A `docker stop` may hold the lock for its whole timeout: a forced removal does not wait it out.
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.kill_task(c.id, signal.SIGKILL, all=True)
        async with live.lock:
            c = self._current(ref, c.id)
            if c.state.running:
                if not force:
                    raise Conflict(f"You cannot remove a running container {c.id}. Stop the container before "
                                   "attempting removal or force remove")
                if c.state.status == Status.PAUSED:
                    with contextlib.suppress(rt.RuntimeError_):
                        await self._rt.resume_task(c.id)
                pid = c.state.pid
                # A forced task delete kills the process and reaps it in one call.
                try:
                    status = await self._rt.delete_task(c.id, force=True)
                    code, at = status["exit_status"], status["exited_at"]
                except rt.NotFound:
                    code, at = 255, time.time()
                await self._exited_locked(c, live, pid, code, at, autoremove=False)
            if c.state.status == Status.REMOVING:
                raise Conflict(f"removal of container {c.id} is already in progress")
            if c.state.status == Status.RESTARTING:
                if not force:
                    raise Conflict(f"You cannot remove a restarting container {c.id}. Stop the container before "
                                   "attempting removal or force remove")
                self._cancel_restart(c, live)
            await self._remove_locked(c, live, volumes=volumes)

    async def _remove_locked(self, c: Container, live: _Live, *, volumes: bool) -> None:
        c.state.removing()
        try:
            with contextlib.suppress(rt.NotFound):
                await self._rt.delete_task(c.id, force=True)
            with contextlib.suppress(rt.NotFound):
                await self._rt.remove_container(c.id)
        except BaseException:
            c.state.status = Status.DEAD
            await self._store.save(c)
            raise
        if c.log_path:
            # The runtime leaves a task's log for whoever reads it; that was us, and the container is gone.
            with contextlib.suppress(OSError):
                os.unlink(c.log_path)
        await self._networks.forget(c.id)
        await self._store.delete(c)
        self._events.container(c, "destroy")
        if volumes:
            for v in c.volumes:
                if v["anonymous"]:
                    with contextlib.suppress(EngineError):
                        await self._volumes.remove(v["name"])
                        self._events.publish("volume", "destroy", v["name"], {"driver": "local"})
        self._lives.pop(c.id, None)
        for callback in self.on_removed:
            callback(c.id)
        log.info("removed container=%s", c.id)
        _settle(live.removals, c.state.exit_code)
        _settle(live.exits, c.state.exit_code)
        _settle(live.attachers, None)

    async def rename(self, ref: str, new: str) -> None:
        if not new:
            raise InvalidArgument("Neither old nor new names may be empty")
        bare = names.validate(new)
        c = self.get(ref)
        if bare == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        old = c.name
        await self._store.rename(c, bare)
        self._events.container(c, "rename", oldName="/" + old)

    # update --------------------------------------------------------------

    async def update(self, ref: str, req: UpdateRequest) -> list[str]:
        """docker update: new limits for the container's next runs and, if it runs, for this one; the warnings."""
        c = self.get(ref)
        live = self._live(c.id)
        async with live.lock:
            c = self._current(ref, c.id)
            host_config, warnings = merged(c.host_config, req)
            old, new = runtime_resources(c.host_config), runtime_resources(host_config)
            if new != old:
                # The runtime's stored spec first: it checks what only the host knows before anything live changes.
                await self._rt.set_container_resources(c.id, new)
                if c.state.running:
                    await self._update_task(c, old, new)
            c.host_config = host_config
            await self._store.save(c)
        self._events.container(c, "update")
        return warnings

    async def _update_task(self, c: Container, old: dict[str, Any], new: dict[str, Any]) -> None:
        try:
            await self._rt.update_task(c.id, new)
        except (rt.NotFound, rt.FailedPrecondition):
            pass  # the process has just ended; its next run starts with the stored limits
        except rt.RuntimeError_:
            with contextlib.suppress(rt.RuntimeError_):
                await self._rt.set_container_resources(c.id, old)
            raise

    # pause, top, resize --------------------------------------------------

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        async with self._live(c.id).lock:
            c = self._current(ref, c.id)
            if c.state.status == Status.PAUSED:
                raise Conflict(f"Container {c.id} is already paused")
            if not c.state.running:
                raise Conflict(f"Container {c.id} is not running")
            await self._rt.pause_task(c.id)
            c.state.pause()
            await self._store.save(c)
        self._events.container(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        async with self._live(c.id).lock:
            c = self._current(ref, c.id)
            if c.state.status != Status.PAUSED:
                raise Conflict(f"Container {c.id} is not paused")
            await self._rt.resume_task(c.id)
            c.state.unpause()
            await self._store.save(c)
        self._events.container(c, "unpause")

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        """`ps` on the host, cut down to the container's processes (what dockerd does)."""
        c = self.get(ref)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        pids = set(await self._rt.task_pids(c.id))
        proc = await asyncio.create_subprocess_exec("ps", *(ps_args.split() or ["-ef"]),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode:
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
        c = self.get(ref)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        await self._rt.resize_task(c.id, height, width)
        self._events.container(c, "resize", height=str(height), width=str(width))

    # attach --------------------------------------------------------------

    async def attachment(self, c: Container) -> Attachment | None:
        """A connection to the container process's stdio, made before it can write a byte the caller would miss.

        A running container's is made now; otherwise at the next start, just before the process
        runs. None if the process has already gone, the start fails or the container is removed.
        """
        live = self._live(c.id)
        async with live.lock:
            current = self._store.find(c.id)
            if current is None:
                return None
            self._events.container(current, "attach")
            if current.state.running:
                try:
                    return await Attachment.connect((await self._rt.task_io(c.id))["attach_socket"])
                except (rt.NotFound, rt.FailedPrecondition):
                    return None
            fut: asyncio.Future[Attachment | None] = asyncio.get_running_loop().create_future()
            live.attachers.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            # Connected by a start just as our client left.
            if fut.done() and not fut.cancelled() and fut.result() is not None:
                fut.result().close()
            raise
