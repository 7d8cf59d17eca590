"""Exec instances: created by the API, run as runtime execs in the container's task.

Docker creates an exec's record first and its process only at start; so do we. The
runtime prepares an exec held back from running, so the engine attaches to its stdio
before starting it and the first byte of output is never lost.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.api.gofields import go_keys
from engine.containers import links
from engine.containers.exec_action import exec_action
from engine.containers.exec_env import exec_environment
from engine.containers.exitcodes import start_failure_code
from engine.containers.state import Status, not_running
from engine.containers.stdin import parse_detach_keys
from engine.containers.store import Container, ContainerStore
from engine.errors import Conflict, InvalidArgument, NotFound
from engine.events import EventBus
from runtime import client as rt
from runtime.client.attach import Attachment

log = logging.getLogger("engine.execs")


class ExecConfig(BaseModel):
    # Strict as Go's decoder is: "yes" or 1 is no bool.
    model_config = ConfigDict(extra="allow", strict=True)
    AttachStdin: bool | None = None
    AttachStdout: bool | None = None
    AttachStderr: bool | None = None
    Tty: bool | None = None
    DetachKeys: str | None = None
    Env: list[str] | None = None
    WorkingDir: str | None = None
    User: str | None = None
    Privileged: bool | None = None
    Cmd: list[str] | None = None  # a plain array: unlike a container's Cmd, dockerd takes no single string here
    ConsoleSize: list[int] | None = None  # API 1.42's [height, width] of a Tty exec's terminal from its start


class ExecStart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    Detach: bool | None = None
    Tty: bool | None = None
    ConsoleSize: list[int] | None = None  # overrides the create's


def console_size(value: list[int] | None) -> tuple[int, int] | None:
    """ConsoleSize as (height, width): None when unset or zero (no size to give the terminal)."""
    if value is None:
        return None
    if len(value) != 2 or any(not 0 <= n < 65536 for n in value):
        raise InvalidArgument(f"invalid ConsoleSize {value}: [height, width] in 0 to 65535")
    return (value[0], value[1]) if value[0] and value[1] else None


def parse_model(model: type[BaseModel], body: Any) -> Any:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidArgument("expected a JSON object")
    try:
        return model.model_validate(go_keys(model, body))
    except ValidationError as e:
        err = e.errors()[0]
        raise InvalidArgument(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


# Execs' exits the event stream told before their finish asked, kept for it; how long a finish waits for one.
_EXITS_KEPT = 256
_EXIT_EVENT_WAIT = 1.0

@dataclass(eq=False)
class Exec:
    id: str
    container_id: str
    config: ExecConfig
    started: bool = False
    running: bool = False
    prepared: bool = False  # the runtime holds the process: resizes go through
    exit_code: int | None = None
    pid: int = 0
    size: tuple[int, int] | None = None
    created: float = field(default_factory=time.time)
    # Asked of the runtime as soon as the process runs, so its exit code is at hand when its output ends.
    exit_status: asyncio.Task[int] | None = field(default=None, repr=False)
    container: Container | None = field(default=None, repr=False)

    @property
    def detach_keys(self) -> bytes:
        return parse_detach_keys(self.config.DetachKeys)

    def docker(self) -> dict[str, Any]:
        cmd = self.config.Cmd or []
        process: dict[str, Any] = {"tty": bool(self.config.Tty), "entrypoint": cmd[0] if cmd else "",
                                   "arguments": cmd[1:], "privileged": bool(self.config.Privileged)}
        if self.config.User:
            process["user"] = self.config.User
        # dockerd keeps the keys asked for as bytes, so its JSON has them in base64 ("" when none were asked).
        asked = parse_detach_keys(self.config.DetachKeys) if self.config.DetachKeys else b""
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code, "ProcessConfig": process,
            "OpenStdin": bool(self.config.AttachStdin), "OpenStderr": bool(self.config.AttachStderr),
            "OpenStdout": bool(self.config.AttachStdout), "CanRemove": False, "ContainerID": self.container_id,
            "DetachKeys": base64.b64encode(asked).decode(), "Pid": self.pid,
        }


class ExecService:
    def __init__(self, containers: ContainerStore, runtime: rt.RuntimeAPI, events: EventBus,
                 bridge_address: Callable[[str], str | None],
                 run_over: Callable[[Container], asyncio.Event | None] = lambda c: None) -> None:
        """`run_over`: what is set once a running container's exit is recorded (None when it does not run)."""
        self._containers = containers
        self._run_over = run_over
        self._bridge_address = bridge_address  # a linked container's, for the links' variables
        self._rt = runtime
        self._events = events
        self._execs: dict[str, Exec] = {}
        self._background: set[asyncio.Task[None]] = set()
        # Execs whose exit the runtime's event stream has told (the last few), and finishes waiting for one.
        self._exits_told: OrderedDict[str, None] = OrderedDict()
        self._exit_waiters: dict[str, asyncio.Event] = {}

    def _event(self, e: Exec, action: str, **attributes: str) -> None:
        # The container as the exec was made in it, once it is gone: `rm -f` ends its execs after its record.
        c = self._containers.find(e.container_id) or e.container
        if c is not None:
            self._events.container(c, action, execID=e.id, **attributes)

    def _forget_removed(self) -> None:
        """Execs go with their container, as in dockerd; swept here instead of told by every removal."""
        for e in [e for e in self._execs.values() if self._containers.find(e.container_id) is None]:
            del self._execs[e.id]

    def _running_container(self, ref: str) -> str:
        c = self._containers.get(ref)
        if c.state.status == Status.PAUSED:
            raise Conflict(f"Container {ref} is paused, unpause the container before exec")
        if not c.state.running:
            raise not_running(c.id, c.state.status)
        return c.id

    def create(self, ref: str, config: ExecConfig) -> Exec:
        cid = self._running_container(ref)
        if not config.Cmd:
            raise InvalidArgument("No exec command specified")
        try:
            parse_detach_keys(config.DetachKeys)
        except ValueError:
            raise InvalidArgument(f"Invalid escape keys ({config.DetachKeys}) provided") from None
        if config.WorkingDir and not config.WorkingDir.startswith("/"):
            # The runtime's words for a container's: runc's refusal at start would come too late for a 400.
            raise InvalidArgument(f"the working directory '{config.WorkingDir}' is invalid, it needs to be an "
                                  "absolute path")
        size = console_size(config.ConsoleSize)
        self._forget_removed()
        e = Exec(id=secrets.token_hex(32), container_id=cid, config=config, container=self._containers.find(cid),
                 size=size)
        self._execs[e.id] = e
        self._event(e, exec_action("create", config.Cmd))
        return e

    def live_ids(self, cid: str) -> list[str]:
        """inspect's ExecIDs: dockerd keeps an exec on its container from create until its process exits,
        and drops them all when the container stops."""
        c = self._containers.find(cid)
        if c is None or not c.state.running:
            return []
        since = c.state.started_at or 0.0
        return [e.id for e in self._execs.values()
                if e.container_id == cid and e.exit_code is None and e.created >= since]

    def get(self, exec_id: str) -> Exec:
        e = self._execs.get(exec_id)
        c = self._containers.find(e.container_id) if e is not None else None
        # dockerd drops the execs still on a container (not started, or not ended) when it stops; the ended
        # ones stay inspectable.
        if e is None or c is None or (e.exit_code is None and e.id not in self.live_ids(c.id)):
            self._execs.pop(exec_id, None)
            raise NotFound(f"No such exec instance: {exec_id}")
        return e

    def check_container(self, e: Exec) -> None:
        """Conflict unless the exec's container can take it now (running, not paused)."""
        self._running_container(e.container_id)

    async def prepare(self, e: Exec, *, attach: bool) -> Attachment | None:
        """Create the process, held back; with `attach`, connect to its stdio now."""
        if e.running:
            raise Conflict(f"Error: Exec command {e.id} is already running")
        if e.started:
            raise Conflict(f"Error: Exec command {e.id} has already run")
        self._running_container(e.container_id)
        e.started = True
        try:
            return await self._prepare(e, attach)
        except BaseException as err:
            # Started is for good (a second start is a 409, as in dockerd): the exec ends here, with the code
            # launch() would give it, rather than staying in ExecIDs never to run.
            e.exit_code = start_failure_code(err.message if isinstance(err, rt.RuntimeError_) else "", otherwise=126,
                                             command=next(iter(e.config.Cmd or []), ""))
            if e.prepared:
                await self._discard(e)
            raise

    async def _prepare(self, e: Exec, attach: bool) -> Attachment | None:
        c = e.config
        owner = self._containers.find(e.container_id)
        try:
            created = await self._rt.add_exec(e.container_id, e.id, list(c.Cmd or []), env=self._env(e),
                                              cwd=c.WorkingDir or None, user=c.User or None, terminal=bool(c.Tty),
                                              stdin=bool(c.AttachStdin), privileged=bool(c.Privileged),
                                              inherit_env=False, console_size=e.size if c.Tty else None,
                                              additional_gids=list(owner.host_config.get("GroupAdd") or [])
                                              if owner is not None else None)
        except (rt.NotFound, rt.FailedPrecondition):
            # The process ended a moment ago and its exit is still on its way to the container's record.
            raise not_running(e.container_id, Status.EXITED) from None
        e.prepared = True  # a size asked for before this is in the process's spec
        return await Attachment.connect(created.io.attach_socket) if attach else None

    def _env(self, e: Exec) -> list[str]:
        c = self._containers.find(e.container_id)
        if c is None:
            raise NotFound(f"No such container: {e.container_id}")
        linked = links.resolve(c, self._containers.find, self._bridge_address, strict=False).env
        return exec_environment(c.config, bool(e.config.Tty), linked, list(e.config.Env or []))

    async def launch(self, e: Exec) -> None:
        """Run the prepared process; a failure is the exec's exit (126/127), as for Docker."""
        self._event(e, exec_action("start", e.config.Cmd or []))  # told before it runs (or fails to), as dockerd
        try:
            state = await self._rt.start_exec(e.container_id, e.id)
        except rt.RuntimeError_ as err:
            # dockerd's code for an exec that could not start, unless it names a missing program (127).
            e.exit_code = start_failure_code(err.message, otherwise=126, command=next(iter(e.config.Cmd or []), ""))
            await self._discard(e)
            raise
        e.pid, e.running = state.pid, True
        e.exit_status = asyncio.create_task(self._wait(e), name=f"exec-wait-{e.id[:12]}")

    async def _wait(self, e: Exec) -> int:
        try:
            return (await self._rt.wait_task(e.container_id, exec_id=e.id)).exit_status
        except rt.NotFound:
            # The container's exit took the task, and the exec with it.
            return 137 if e.exit_code is None else e.exit_code

    async def finish(self, e: Exec) -> None:
        """Record the exit code (before the caller ends the client's stream); the process is dropped after."""
        e.exit_code = await (e.exit_status or self._wait(e))
        e.running = False
        if e.exit_code == 137:
            await self._after_exit_told(e.id)
            await self._container_exit_recorded(e)
        self._event(e, "exec_die", exitCode=str(e.exit_code))
        # The client reads the exit code from our record, not the runtime's: it need not wait for the removal.
        self._in_background(self._discard(e), f"exec-rm-{e.id[:12]}")

    async def _container_exit_recorded(self, e: Exec) -> None:
        """A killed exec whose container's process has ended too (a stop, a kill, the process exiting): its client
        hears the code once the container's record says it exited, as dockerd answers, so the next `inspect` or
        `exec` finds it so."""
        c = self._containers.find(e.container_id)
        over = self._run_over(c) if c is not None else None
        if over is None or over.is_set():
            return
        try:
            ended = (await self._rt.task(e.container_id)).status == "stopped"
        except rt.NotFound:
            ended = True
        if ended:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_EXIT_EVENT_WAIT):
                    await over.wait()

    def exit_told(self, exec_id: str) -> None:
        """The runtime's event stream told this exec's exit (after any OOM kill it told of)."""
        waiter = self._exit_waiters.get(exec_id)
        if waiter is not None:
            waiter.set()
            return
        self._exits_told[exec_id] = None
        if len(self._exits_told) > _EXITS_KEPT:
            self._exits_told.popitem(last=False)

    async def _after_exit_told(self, exec_id: str) -> None:
        """A killed exec, perhaps by the OOM killer: its `exec_die` waits for the event stream to reach its exit,
        so that the `oom` told before it on that stream is told first, as dockerd tells them."""
        if exec_id in self._exits_told:
            del self._exits_told[exec_id]
            return
        waiter = self._exit_waiters[exec_id] = asyncio.Event()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_EXIT_EVENT_WAIT):
                    await waiter.wait()
        finally:
            self._exit_waiters.pop(exec_id, None)

    def detached(self, e: Exec) -> None:
        """Its client typed the detach keys; the process runs on."""
        self._event(e, "exec_detach")

    def finish_later(self, e: Exec) -> None:
        """finish() once the process exits, for a process nobody is attached to any more."""
        self._in_background(self.finish(e), f"exec-{e.id[:12]}")

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def start_detached(self, e: Exec) -> None:
        await self.prepare(e, attach=False)
        try:
            await self.launch(e)
        except rt.RuntimeError_ as err:
            # runc's refusal, in the words dockerd passes on from containerd (as an attached start writes it).
            raise type(err)(f"OCI runtime exec failed: {err.message}: unknown") from None
        self.finish_later(e)

    async def resize(self, e: Exec, height: int, width: int) -> None:
        # As dockerd: its container must run, and an ended exec's process is gone (containerd's not found).
        self._running_container(e.container_id)
        if e.exit_code is not None:
            raise NotFound(f"process does not exist {e.id}: not found")
        # The CLI resizes right after the 101, maybe before the process exists: keep the size for then.
        e.size = (height, width)
        if e.prepared:
            await self._resize(e)

    async def _resize(self, e: Exec) -> None:
        if e.size is None or not e.config.Tty:
            return
        with contextlib.suppress(rt.NotFound, rt.FailedPrecondition):
            await self._rt.resize_task(e.container_id, e.size[0], e.size[1], exec_id=e.id)

    async def _discard(self, e: Exec) -> None:
        e.prepared = False
        with contextlib.suppress(rt.NotFound, rt.FailedPrecondition):
            await self._rt.delete_exec(e.container_id, e.id)
