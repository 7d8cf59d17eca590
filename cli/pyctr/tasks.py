"""pyctr run, containers and tasks: what ctr does with them, over the runtime's client.

As ctr: an attached run passes the signals pyctr gets on to the task (not with a terminal, where they are
the terminal's keys), and the task is deleted once it has ended, the container kept unless `--rm`.
`tasks start` of a container with no task creates one first.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from cli.common.terminal import raw_terminal
from cli.pyctr import output, stdio
from runtime.client import Client, NotFound
from runtime.client.attach import Attachment
from runtime.client.imageconfig import process_from_image
from runtime.client.signals import parse_signal

T = TypeVar("T")
Call = Callable[[argparse.Namespace, Callable[[Client], Awaitable[T]]], T]

# What ctr forwards to a task it runs attached: every signal a user sends a foreground program.
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _mounts(specs: list[str]) -> list[dict[str, Any]]:
    """ctr's --mount: type=bind,src=/a,dst=/b,options=rbind:ro"""
    out = []
    for spec in specs:
        fields = dict(part.partition("=")[::2] for part in spec.split(","))
        dst = fields.get("dst") or fields.get("destination")
        if not dst:
            raise output.UsageError(f"mount {spec!r} needs dst=")
        out.append({"type": fields.get("type", "bind"), "source": fields.get("src", fields.get("source", "")),
                    "destination": dst, "options": [o for o in fields.get("options", "rbind").split(":") if o]})
    return out


def run_cmd(a: argparse.Namespace, call: Call[int]) -> None:
    if a.detach and a.rm:
        raise output.UsageError("flags --detach and --rm cannot be specified together")
    options: dict[str, Any] = {"tty": a.tty, "stdin": not a.detach, "mounts": _mounts(a.mount),
                               "memory": a.memory_limit, "pids_limit": a.pids_limit, "readonly_rootfs": a.read_only,
                               "privileged": a.privileged, "hostname": a.container_id}

    async def go(c: Client) -> int:
        # The runtime takes the process as given: the image's part of it is filled in here, as ctr does.
        process = process_from_image(await c.image_config(a.ref), a.args, env=a.env, cwd=a.cwd, user=a.user)
        await c.create_container(a.container_id, a.ref, {**options, **process}, snapshotter=a.snapshotter,
                                 runtime=a.runtime, init=a.init)
        try:
            await c.create_task(a.container_id, terminal=a.tty, stdin=not a.detach)
            if a.detach:
                await c.start_task(a.container_id)
                return 0
            code = await _attached_start(c, a.container_id, None, a.tty)
        except BaseException:
            if a.rm:
                await _remove(c, a.container_id)
            raise
        if a.rm:
            await _remove(c, a.container_id)
        else:
            await c.delete_task(a.container_id)
        return code

    raise SystemExit(call(a, go))


@contextlib.contextmanager
def _forwarding(c: Client, task_id: str, exec_id: str | None, terminal: bool) -> Iterator[None]:
    """While a task runs attached without a terminal, the signals pyctr gets go to it, as ctr forwards them."""
    if terminal:
        yield
        return
    loop = asyncio.get_running_loop()
    sent: set[asyncio.Task[None]] = set()

    def forward(signum: int) -> None:
        async def send() -> None:
            with contextlib.suppress(Exception):
                await c.kill_task(task_id, signum, exec_id=exec_id)
        task = loop.create_task(send())
        sent.add(task)
        task.add_done_callback(sent.discard)

    for signum in _FORWARDED:
        loop.add_signal_handler(signum, forward, signum)
    try:
        yield
    finally:
        for signum in _FORWARDED:
            loop.remove_signal_handler(signum)


async def _attached_start(c: Client, task_id: str, exec_id: str | None, terminal: bool) -> int:
    """Attach before starting, so no output is lost; pump stdio; return the exit code."""
    io = await c.task_io(task_id, exec_id)
    att = await Attachment.connect(io.attach_socket)

    async def resize(rows: int, cols: int) -> None:
        await c.resize_task(task_id, rows, cols, exec_id)

    with contextlib.closing(att), raw_terminal(terminal), _forwarding(c, task_id, exec_id, terminal):
        if exec_id:
            await c.start_exec(task_id, exec_id)
        else:
            await c.start_task(task_id)
        await stdio.pump(att, stdin=True, terminal=terminal, resize=resize)
    status = await c.wait_task(task_id, exec_id)
    return status.exit_status


async def _remove(c: Client, container_id: str) -> None:
    with contextlib.suppress(NotFound):
        await c.delete_task(container_id, force=True)
    await c.remove_container(container_id)


def containers_ls(a: argparse.Namespace, call: Call[Any]) -> None:
    rows = call(a, lambda c: c.containers())
    if a.quiet:
        output.lines(r.id for r in rows)
        return
    output.table(["CONTAINER", "IMAGE", "RUNTIME"], [[r.id, r.image, r.runtime] for r in rows])


def containers_info(a: argparse.Namespace, call: Call[Any]) -> None:
    record = call(a, lambda c: c.container(a.container_id))
    print(json.dumps(record.model_dump(mode="json"), indent=2))


def containers_rm(a: argparse.Namespace, call: Call[None]) -> None:
    async def go(c: Client) -> None:
        for cid in a.container_ids:
            # As ctr: a task that has ended goes with its container; a running one is refused by the runtime.
            with contextlib.suppress(NotFound):
                task = await c.task(cid)
                if task.status == "stopped":
                    await c.delete_task(cid)
            await c.remove_container(cid)

    call(a, go)


def tasks_ls(a: argparse.Namespace, call: Call[Any]) -> None:
    rows = call(a, lambda c: c.tasks())
    output.table(["TASK", "PID", "STATUS"], [[r.id, str(r.pid), r.status.upper()] for r in rows])


def tasks_start(a: argparse.Namespace, call: Call[int]) -> None:
    async def go(c: Client) -> int:
        try:
            task = await c.task(a.task_id)
            terminal = task.terminal
        except NotFound:
            # A container without a task (its last run deleted it): a new task, as ctr makes one.
            record = await c.container(a.task_id)
            terminal = bool(record.spec.get("process", {}).get("terminal"))
            await c.create_task(a.task_id, terminal=terminal, stdin=not a.detach)
        if a.detach:
            await c.start_task(a.task_id)
            return 0
        return await _attached_start(c, a.task_id, None, terminal)

    raise SystemExit(call(a, go))


def tasks_kill(a: argparse.Namespace, call: Call[None]) -> None:
    call(a, lambda c: c.kill_task(a.task_id, parse_signal(a.signal), all=a.all, exec_id=a.exec_id))


def tasks_delete(a: argparse.Namespace, call: Call[None]) -> None:
    async def go(c: Client) -> None:
        for tid in a.task_ids:
            await c.delete_task(tid, force=a.force)

    call(a, go)


def tasks_ps(a: argparse.Namespace, call: Call[Any]) -> None:
    output.table(["PID"], [[str(p)] for p in call(a, lambda c: c.task_pids(a.task_id))])


def tasks_pause(a: argparse.Namespace, call: Call[None]) -> None:
    call(a, lambda c: c.pause_task(a.task_id))


def tasks_resume(a: argparse.Namespace, call: Call[None]) -> None:
    call(a, lambda c: c.resume_task(a.task_id))


def tasks_metrics(a: argparse.Namespace, call: Call[Any]) -> None:
    m = call(a, lambda c: c.task_metrics(a.task_id))
    output.table(["METRIC", "VALUE"], [[k, "-" if v is None else str(v)] for k, v in m.model_dump().items()])


def tasks_attach(a: argparse.Namespace, call: Call[int]) -> None:
    async def go(c: Client) -> int:
        task = await c.task(a.task_id)
        io = await c.task_io(a.task_id)
        att = await Attachment.connect(io.attach_socket)

        async def resize(rows: int, cols: int) -> None:
            await c.resize_task(a.task_id, rows, cols)

        with contextlib.closing(att), raw_terminal(task.terminal):
            await stdio.pump(att, stdin=task.stdin, terminal=task.terminal, resize=resize)
        return (await c.wait_task(a.task_id)).exit_status

    raise SystemExit(call(a, go))


def tasks_exec(a: argparse.Namespace, call: Call[int]) -> None:
    async def go(c: Client) -> int:
        await c.add_exec(a.task_id, a.exec_id, a.args, env=a.env, cwd=a.cwd, user=a.user, terminal=a.tty,
                         stdin=not a.detach)
        if a.detach:
            await c.start_exec(a.task_id, a.exec_id)
            return 0
        try:
            return await _attached_start(c, a.task_id, a.exec_id, a.tty)
        finally:
            await c.delete_exec(a.task_id, a.exec_id)

    raise SystemExit(call(a, go))


def add_commands(sub: Any, group: Callable[..., Any], cmd: Callable[..., argparse.ArgumentParser],
                 call: Call[Any]) -> None:
    p = cmd(sub, ["run"], lambda a: run_cmd(a, call), "run a container")
    p.add_argument("--rm", action="store_true", help="remove the task and container when it exits")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE")
    p.add_argument("--cwd")
    p.add_argument("-u", "--user")
    p.add_argument("--mount", action="append", default=[], help="type=bind,src=/a,dst=/b,options=rbind:ro")
    p.add_argument("--snapshotter")
    p.add_argument("--runtime", default="runc")
    p.add_argument("--memory-limit", type=int, help="bytes")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--init", action=argparse.BooleanOptionalAction, default=True,
                   help="run the command under a small init that forwards signals (tini)")
    p.add_argument("ref")
    p.add_argument("container_id")
    p.add_argument("args", nargs=argparse.REMAINDER, help="command and arguments (default: the image's)")

    c = group(sub, "containers", "manage containers", ["c"])
    cmd(c, ["ls", "list"], lambda a: containers_ls(a, call), "list containers").add_argument(
        "-q", "--quiet", action="store_true")
    cmd(c, ["info"], lambda a: containers_info(a, call), "show a container").add_argument("container_id")
    cmd(c, ["rm", "delete"], lambda a: containers_rm(a, call), "remove containers").add_argument(
        "container_ids", nargs="+")

    t = group(sub, "tasks", "manage tasks", ["t"])
    cmd(t, ["ls", "list"], lambda a: tasks_ls(a, call), "list tasks")
    p = cmd(t, ["start"], lambda a: tasks_start(a, call), "start a task (a new one if the container has none)")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("task_id")
    p = cmd(t, ["kill"], lambda a: tasks_kill(a, call), "signal a task")
    p.add_argument("-s", "--signal", default="SIGTERM")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--exec-id")
    p.add_argument("task_id")
    p = cmd(t, ["delete", "rm"], lambda a: tasks_delete(a, call), "delete tasks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("task_ids", nargs="+")
    for names, func, help in ((["ps"], tasks_ps, "processes of a task"), (["pause"], tasks_pause, "pause a task"),
                              (["resume"], tasks_resume, "resume a task"),
                              (["metrics"], tasks_metrics, "cgroup metrics of a task"),
                              (["attach"], tasks_attach, "attach to a task's stdio")):
        cmd(t, names, lambda a, f=func: f(a, call), help).add_argument("task_id")
    p = cmd(t, ["exec"], lambda a: tasks_exec(a, call), "run an extra process in a task")
    p.add_argument("--exec-id", required=True)
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--cwd")
    p.add_argument("-u", "--user")
    p.add_argument("task_id")
    p.add_argument("args", nargs=argparse.REMAINDER)
