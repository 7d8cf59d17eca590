"""pyctr: a ctr-like CLI for the pyruntimed API. Parses options, calls the client, prints.

argparse rather than Typer: every pyctr command pays its start-up time, and
Typer (with the pydantic adapters it imports) costs about 200 ms of it.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from cli.common.terminal import raw_terminal
from cli.pyctr import archives, output, push, stdio
from cli.pyctr.since import since
from runtime.client import DEFAULT_ADDRESS, Client, NotFound, RuntimeError_
from runtime.client.attach import Attachment
from runtime.client.imageconfig import process_from_image
from runtime.client.signals import parse_signal

T = TypeVar("T")


def call(args: argparse.Namespace, fn: Callable[[Client], Awaitable[T]]) -> T:
    """Run one client call; typed errors become one line on stderr and exit 1."""

    async def go() -> T:
        async with Client(args.address, args.namespace) as c:
            return await fn(c)

    try:
        return asyncio.run(go())
    except RuntimeError_ as e:
        print(f"pyctr: {e.message}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


# namespaces ------------------------------------------------------------------

def namespaces_list(a: argparse.Namespace) -> None:
    rows = call(a, lambda c: c.namespaces())
    if a.quiet:
        print("\n".join(r["name"] for r in rows))
        return
    output.table(["NAME", "LABELS"], [[r["name"], output.labels(r["labels"])] for r in rows])


def namespaces_create(a: argparse.Namespace) -> None:
    call(a, lambda c: c.create_namespace(a.name, output.parse_labels(a.labels)))


def namespaces_remove(a: argparse.Namespace) -> None:
    async def go(c: Client) -> None:
        for n in a.names:
            await c.remove_namespace(n)
            print(n)

    call(a, go)


def namespaces_label(a: argparse.Namespace) -> None:
    call(a, lambda c: c.set_namespace_labels(a.name, output.parse_labels(a.labels)))


def plugins_list(a: argparse.Namespace) -> None:
    rows = call(a, lambda c: c.plugins())
    output.table(["TYPE", "ID", "STATUS"],
                 [[r["type"], r["id"], r["status"] + (f" ({r['reason']})" if r["reason"] else "")] for r in rows])


# images ----------------------------------------------------------------------

def images_pull(a: argparse.Namespace) -> None:
    creds = output.parse_user(a.user) if a.user else None

    async def go(c: Client) -> dict[str, Any]:
        renderer = output.PullRenderer(sys.stdout)
        try:
            async for ev in c.pull(a.ref, plain_http=a.plain_http, snapshotter=a.snapshotter,
                                   unpack=not a.skip_unpack, platform=a.platform, credentials=creds):
                renderer.update(ev)
                if ev.get("status") == "complete":
                    image: dict[str, Any] = ev["image"]
                    return image
        finally:
            renderer.close()
        raise RuntimeError_("pull ended without completing")

    image = call(a, go)
    print(f"{image['name']}: {image['target']['digest']}")


def images_push(a: argparse.Namespace) -> None:
    pushed = call(a, lambda c: push.push(c, a))
    print(f"{a.remote}: {pushed['digest']}")


def images_ls(a: argparse.Namespace) -> None:
    rows = call(a, lambda c: c.images())
    if a.quiet:
        print("\n".join(r.name for r in rows))
        return
    output.table(["REF", "TYPE", "DIGEST", "SIZE"],
                 [[r.name, r.target.mediaType, r.target.digest, output.size(r.target.size)]
                  for r in rows])


def images_rm(a: argparse.Namespace) -> None:
    async def go(c: Client) -> None:
        for r in a.refs:
            await c.remove_image(r)
            print(r)

    call(a, go)


def content_ls(a: argparse.Namespace) -> None:
    rows = call(a, lambda c: c.content())
    if a.quiet:
        print("\n".join(r.digest for r in rows))
        return
    output.table(["DIGEST", "SIZE", "LABELS"],
                 [[r.digest, output.size(r.size), output.labels(r.labels)] for r in rows])


def content_rm(a: argparse.Namespace) -> None:
    async def go(c: Client) -> None:
        for d in a.digests:
            await c.remove_content(d)
            print(d)

    call(a, go)


def content_ingest(a: argparse.Namespace) -> None:
    async def stdin() -> AsyncIterator[bytes]:
        # read1 answers as soon as some bytes are there: a slow producer is streamed, not waited for.
        while chunk := await asyncio.to_thread(sys.stdin.buffer.read1, 1 << 20):  # type: ignore[union-attr]
            yield chunk

    print(call(a, lambda c: c.write_content(a.ref, stdin(), expected=a.expected)).digest)


def snapshots_ls(a: argparse.Namespace) -> None:
    rows = call(a, lambda c: c.snapshots(a.snapshotter))
    output.table(["KEY", "PARENT", "KIND"], [[r["key"], r.get("parent") or "", r["kind"]] for r in rows])


def snapshots_usage(a: argparse.Namespace) -> None:
    u = call(a, lambda c: c.snapshot_usage(a.snapshotter, a.key))
    output.table(["KEY", "SIZE", "INODES"], [[a.key, output.size(u.size), str(u.inodes)]])


def snapshots_mounts(a: argparse.Namespace) -> None:
    for m in call(a, lambda c: c.snapshot_mounts(a.snapshotter, a.key)):
        print(f"mount -t {m.type} {m.source} -o {','.join(m.options)}")


# containers and tasks --------------------------------------------------------

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


def run_cmd(a: argparse.Namespace) -> None:
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
        return code

    raise SystemExit(call(a, go))


async def _attached_start(c: Client, task_id: str, exec_id: str | None, terminal: bool) -> int:
    """Attach before starting, so no output is lost; pump stdio; return the exit code."""
    io = await c.task_io(task_id, exec_id)
    att = await Attachment.connect(io.attach_socket)

    async def resize(rows: int, cols: int) -> None:
        await c.resize_task(task_id, rows, cols, exec_id)

    with contextlib.closing(att), raw_terminal(terminal):
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


def containers_ls(a: argparse.Namespace) -> None:
    rows = call(a, lambda c: c.containers())
    if a.quiet:
        print("\n".join(r.id for r in rows))
        return
    output.table(["CONTAINER", "IMAGE", "RUNTIME"], [[r.id, r.image, r.runtime] for r in rows])


def containers_info(a: argparse.Namespace) -> None:
    print(json.dumps(call(a, lambda c: c.container(a.container_id)), indent=2))


def containers_rm(a: argparse.Namespace) -> None:
    async def go(c: Client) -> None:
        for cid in a.container_ids:
            await c.remove_container(cid)

    call(a, go)


def tasks_ls(a: argparse.Namespace) -> None:
    rows = call(a, lambda c: c.tasks())
    output.table(["TASK", "PID", "STATUS"], [[r.id, str(r.pid), r.status.upper()] for r in rows])


def tasks_start(a: argparse.Namespace) -> None:
    async def go(c: Client) -> int:
        task = await c.task(a.task_id)
        if a.detach:
            await c.start_task(a.task_id)
            return 0
        return await _attached_start(c, a.task_id, None, task.terminal)

    raise SystemExit(call(a, go))


def tasks_kill(a: argparse.Namespace) -> None:
    call(a, lambda c: c.kill_task(a.task_id, parse_signal(a.signal), all=a.all, exec_id=a.exec_id))


def tasks_delete(a: argparse.Namespace) -> None:
    async def go(c: Client) -> None:
        for tid in a.task_ids:
            await c.delete_task(tid, force=a.force)

    call(a, go)


def tasks_ps(a: argparse.Namespace) -> None:
    output.table(["PID"], [[str(p)] for p in call(a, lambda c: c.task_pids(a.task_id))])


def tasks_pause(a: argparse.Namespace) -> None:
    call(a, lambda c: c.pause_task(a.task_id))


def tasks_resume(a: argparse.Namespace) -> None:
    call(a, lambda c: c.resume_task(a.task_id))


def tasks_metrics(a: argparse.Namespace) -> None:
    m = call(a, lambda c: c.task_metrics(a.task_id))
    output.table(["METRIC", "VALUE"], [[k, "-" if v is None else str(v)] for k, v in m.model_dump().items()])


def tasks_attach(a: argparse.Namespace) -> None:
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


def tasks_exec(a: argparse.Namespace) -> None:
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


def events(a: argparse.Namespace) -> None:
    async def go(c: Client) -> None:
        async for ev in c.events(a.topics or None, since=a.since):
            print(json.dumps(ev), flush=True)

    call(a, go)


def version(a: argparse.Namespace) -> None:
    v = call(a, lambda c: c.version())
    print(f"Server:\n  Version: {v.version}\n  API: {v.api}")


# parser ----------------------------------------------------------------------

def _usage(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], None]:
    """What a command group without its subcommand does: show what it takes and fail."""
    def show(_: argparse.Namespace) -> None:
        p.print_help()
        sys.exit(1)
    return show


def _group(sub: Any, name: str, help: str, aliases: list[str] | None = None) -> Any:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, aliases=aliases or [])
    p.set_defaults(func=_usage(p))
    return p.add_subparsers(metavar="COMMAND")


def _cmd(sub: Any, names: list[str], func: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(names[0], aliases=names[1:], help=help)
    p.set_defaults(func=func)
    return p


def parser() -> argparse.ArgumentParser:
    snap_default = os.environ.get("PYCTR_SNAPSHOTTER", "overlayfs")
    top = argparse.ArgumentParser(prog="pyctr", description="CLI for the pyengine runtime (pyruntimed)")
    top.add_argument("-a", "--address", default=os.environ.get("PYCTR_ADDRESS", DEFAULT_ADDRESS),
                     help="pyruntimed socket (env PYCTR_ADDRESS)")
    top.add_argument("-n", "--namespace", default=os.environ.get("PYCTR_NAMESPACE", "default"),
                     help="runtime namespace (env PYCTR_NAMESPACE)")
    top.set_defaults(func=_usage(top))
    sub = top.add_subparsers(metavar="COMMAND")

    ns = _group(sub, "namespaces", "manage namespaces", ["ns"])
    _cmd(ns, ["list", "ls"], namespaces_list, "list namespaces").add_argument("-q", "--quiet", action="store_true")
    p = _cmd(ns, ["create"], namespaces_create, "create a namespace")
    p.add_argument("name")
    p.add_argument("labels", nargs="*", help="KEY=VALUE")
    _cmd(ns, ["remove", "rm"], namespaces_remove, "remove empty namespaces").add_argument("names", nargs="+")
    p = _cmd(ns, ["label"], namespaces_label, "set a namespace's labels")
    p.add_argument("name")
    p.add_argument("labels", nargs="*", help="KEY=VALUE")

    pl = _group(sub, "plugins", "inspect plugins")
    _cmd(pl, ["list", "ls"], plugins_list, "list plugins and their status")

    im = _group(sub, "images", "manage images", ["i"])
    p = _cmd(im, ["pull"], images_pull, "pull an image")
    p.add_argument("ref")
    p.add_argument("--plain-http", action="store_true", help="use http instead of https")
    p.add_argument("--snapshotter")
    p.add_argument("--platform", help="os/arch")
    p.add_argument("-u", "--user", help="USER[:PASSWORD] for the registry")
    p.add_argument("--skip-unpack", action="store_true")
    push.add_arguments(_cmd(im, ["push"], images_push, "push an image to a registry"))
    _cmd(im, ["ls", "list"], images_ls, "list images").add_argument("-q", "--quiet", action="store_true")
    _cmd(im, ["rm", "remove"], images_rm, "remove images").add_argument("refs", nargs="+")
    archives.add_commands(im, _cmd, call)

    co = _group(sub, "content", "manage content")
    _cmd(co, ["ls", "list"], content_ls, "list blobs").add_argument("-q", "--quiet", action="store_true")
    _cmd(co, ["rm"], content_rm, "remove blobs").add_argument("digests", nargs="+")
    p = _cmd(co, ["ingest"], content_ingest, "write stdin as a blob under REF; prints its digest")
    p.add_argument("ref")
    p.add_argument("--expected", help="the digest the content must have")

    sn = _group(sub, "snapshots", "manage snapshots")
    for names, func, help, key in ((["ls", "list"], snapshots_ls, "list snapshots", False),
                                   (["usage"], snapshots_usage, "disk usage of a snapshot", True),
                                   (["mounts"], snapshots_mounts, "mounts of a snapshot", True)):
        p = _cmd(sn, names, func, help)
        p.add_argument("--snapshotter", default=snap_default, help="env PYCTR_SNAPSHOTTER")
        if key:
            p.add_argument("key")

    p = _cmd(sub, ["run"], run_cmd, "run a container")
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

    c = _group(sub, "containers", "manage containers", ["c"])
    _cmd(c, ["ls", "list"], containers_ls, "list containers").add_argument("-q", "--quiet", action="store_true")
    _cmd(c, ["info"], containers_info, "show a container").add_argument("container_id")
    _cmd(c, ["rm", "delete"], containers_rm, "remove containers").add_argument("container_ids", nargs="+")

    t = _group(sub, "tasks", "manage tasks", ["t"])
    _cmd(t, ["ls", "list"], tasks_ls, "list tasks")
    p = _cmd(t, ["start"], tasks_start, "start a task")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("task_id")
    p = _cmd(t, ["kill"], tasks_kill, "signal a task")
    p.add_argument("-s", "--signal", default="SIGTERM")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--exec-id")
    p.add_argument("task_id")
    p = _cmd(t, ["delete", "rm"], tasks_delete, "delete tasks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("task_ids", nargs="+")
    for names, func, help in ((["ps"], tasks_ps, "processes of a task"), (["pause"], tasks_pause, "pause a task"),
                              (["resume"], tasks_resume, "resume a task"),
                              (["metrics"], tasks_metrics, "cgroup metrics of a task"),
                              (["attach"], tasks_attach, "attach to a task's stdio")):
        _cmd(t, names, func, help).add_argument("task_id")
    p = _cmd(t, ["exec"], tasks_exec, "run an extra process in a task")
    p.add_argument("--exec-id", required=True)
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--cwd")
    p.add_argument("-u", "--user")
    p.add_argument("task_id")
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = _cmd(sub, ["events"], events, "print runtime events")
    p.add_argument("topics", nargs="*", help="topic filters, e.g. /images/*")
    p.add_argument("--since", type=since, help="first the recorded events from then on (Unix seconds or a "
                   "duration like 10m; the journal keeps them across restarts)")
    _cmd(sub, ["version"], version, "show the daemon's version")
    return top


def main() -> None:
    args = parser().parse_args()
    try:
        args.func(args)
    except output.UsageError as e:
        print(f"pyctr: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
