"""pyctr: a ctr-like CLI for the pyruntimed API. Parses options, calls the client, prints."""
from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any, Awaitable, Callable, Optional, TypeVar

import typer

from cli.pyctr import output, stdio
from runtime.client import DEFAULT_ADDRESS, Client, NotFound, RuntimeError_
from runtime.client.attach import Attachment

T = TypeVar("T")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="CLI for the pyengine runtime (pyruntimed)")
namespaces_app = typer.Typer(no_args_is_help=True, help="Manage namespaces")
plugins_app = typer.Typer(no_args_is_help=True, help="Inspect plugins")
images_app = typer.Typer(no_args_is_help=True, help="Manage images")
content_app = typer.Typer(no_args_is_help=True, help="Manage content")
snapshots_app = typer.Typer(no_args_is_help=True, help="Manage snapshots")
app.add_typer(namespaces_app, name="namespaces")
app.add_typer(namespaces_app, name="ns", hidden=True)
app.add_typer(plugins_app, name="plugins")
app.add_typer(images_app, name="images")
app.add_typer(images_app, name="i", hidden=True)
app.add_typer(content_app, name="content")
app.add_typer(snapshots_app, name="snapshots")
containers_app = typer.Typer(no_args_is_help=True, help="Manage containers")
tasks_app = typer.Typer(no_args_is_help=True, help="Manage tasks")
app.add_typer(containers_app, name="containers")
app.add_typer(containers_app, name="c", hidden=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(tasks_app, name="t", hidden=True)


class _Opts:
    address: str = DEFAULT_ADDRESS
    namespace: str = "default"


@app.callback()
def _global(
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", "-a", envvar="PYCTR_ADDRESS",
                                help="pyruntimed socket"),
    namespace: str = typer.Option("default", "--namespace", "-n", envvar="PYCTR_NAMESPACE",
                                  help="runtime namespace"),
) -> None:
    _Opts.address = address
    _Opts.namespace = namespace


def run(fn: Callable[[Client], Awaitable[T]]) -> T:
    """Run one client call; typed errors become one line on stderr and exit 1."""

    async def go() -> T:
        async with Client(_Opts.address, _Opts.namespace) as c:
            return await fn(c)

    try:
        return asyncio.run(go())
    except RuntimeError_ as e:
        print(f"pyctr: {e.message}", file=sys.stderr)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@namespaces_app.command("list")
@namespaces_app.command("ls", hidden=True)
def namespaces_list(quiet: bool = typer.Option(False, "-q", "--quiet")) -> None:
    rows = run(lambda c: c.namespaces())
    if quiet:
        for r in rows:
            print(r["name"])
        return
    output.table(["NAME", "LABELS"], [[r["name"], output.labels(r["labels"])] for r in rows])


@namespaces_app.command("create")
def namespaces_create(name: str, labels: list[str] = typer.Argument(None, help="KEY=VALUE labels")) -> None:
    run(lambda c: c.create_namespace(name, output.parse_labels(labels or [])))


@namespaces_app.command("remove")
@namespaces_app.command("rm", hidden=True)
def namespaces_remove(names: list[str]) -> None:
    async def go(c: Client) -> None:
        for n in names:
            await c.remove_namespace(n)
            print(n)

    run(go)


@namespaces_app.command("label")
def namespaces_label(name: str, labels: list[str] = typer.Argument(None, help="KEY=VALUE labels")) -> None:
    run(lambda c: c.set_namespace_labels(name, output.parse_labels(labels or [])))


@plugins_app.command("list")
@plugins_app.command("ls", hidden=True)
def plugins_list() -> None:
    rows = run(lambda c: c.plugins())
    output.table(["TYPE", "ID", "STATUS"],
                 [[r["type"], r["id"], r["status"] + (f" ({r['reason']})" if r["reason"] else "")] for r in rows])


@images_app.command("pull")
def images_pull(
    ref: str,
    plain_http: bool = typer.Option(False, "--plain-http", help="use http instead of https"),
    snapshotter: Optional[str] = typer.Option(None, "--snapshotter"),
    platform: Optional[str] = typer.Option(None, "--platform", help="os/arch"),
    user: Optional[str] = typer.Option(None, "--user", "-u", help="USER[:PASSWORD] for the registry"),
    skip_unpack: bool = typer.Option(False, "--skip-unpack"),
) -> None:
    creds = output.parse_user(user) if user else None

    async def go(c: Client) -> dict[str, Any]:
        renderer = output.PullRenderer(sys.stdout)
        try:
            async for ev in c.pull(ref, plain_http=plain_http, snapshotter=snapshotter, unpack=not skip_unpack,
                                   platform=platform, credentials=creds):
                renderer.update(ev)
                if ev.get("status") == "complete":
                    return ev["image"]
        finally:
            renderer.close()
        raise RuntimeError_("pull ended without completing")

    image = run(go)
    print(f"{image['name']}: {image['target']['digest']}")


@images_app.command("ls")
@images_app.command("list", hidden=True)
def images_ls(quiet: bool = typer.Option(False, "-q", "--quiet")) -> None:
    rows = run(lambda c: c.images())
    if quiet:
        for r in rows:
            print(r["name"])
        return
    output.table(["REF", "TYPE", "DIGEST", "SIZE"],
                 [[r["name"], r["target"]["mediaType"], r["target"]["digest"], output.size(r["target"]["size"])]
                  for r in rows])


@images_app.command("rm")
@images_app.command("remove", hidden=True)
def images_rm(refs: list[str]) -> None:
    async def go(c: Client) -> None:
        for r in refs:
            await c.remove_image(r)
            print(r)

    run(go)


@content_app.command("ls")
@content_app.command("list", hidden=True)
def content_ls(quiet: bool = typer.Option(False, "-q", "--quiet")) -> None:
    rows = run(lambda c: c.content())
    if quiet:
        for r in rows:
            print(r["digest"])
        return
    output.table(["DIGEST", "SIZE", "LABELS"],
                 [[r["digest"], output.size(r["size"]), output.labels(r["labels"])] for r in rows])


@content_app.command("rm")
def content_rm(digests: list[str]) -> None:
    async def go(c: Client) -> None:
        for d in digests:
            await c.remove_content(d)
            print(d)

    run(go)


@snapshots_app.command("ls")
@snapshots_app.command("list", hidden=True)
def snapshots_ls(snapshotter: str = typer.Option("overlayfs", "--snapshotter", envvar="PYCTR_SNAPSHOTTER")) -> None:
    rows = run(lambda c: c.snapshots(snapshotter))
    output.table(["KEY", "PARENT", "KIND"], [[r["key"], r.get("parent") or "", r["kind"]] for r in rows])


@snapshots_app.command("usage")
def snapshots_usage(key: str,
                    snapshotter: str = typer.Option("overlayfs", "--snapshotter", envvar="PYCTR_SNAPSHOTTER")) -> None:
    u = run(lambda c: c.snapshot_usage(snapshotter, key))
    output.table(["KEY", "SIZE", "INODES"], [[key, output.size(u["size"]), str(u["inodes"])]])


@snapshots_app.command("mounts")
def snapshots_mounts(key: str,
                     snapshotter: str = typer.Option("overlayfs", "--snapshotter",
                                                     envvar="PYCTR_SNAPSHOTTER")) -> None:
    for m in run(lambda c: c.snapshot_mounts(snapshotter, key)):
        print(f"mount -t {m['type']} {m['source']} -o {','.join(m['options'])}")


def _mounts(specs: list[str]) -> list[dict[str, Any]]:
    """ctr's --mount: type=bind,src=/a,dst=/b,options=rbind:ro"""
    out = []
    for spec in specs:
        fields = dict(part.partition("=")[::2] for part in spec.split(","))
        if not fields.get("dst") and not fields.get("destination"):
            raise typer.BadParameter(f"mount {spec!r} needs dst=")
        out.append({"type": fields.get("type", "bind"), "source": fields.get("src", fields.get("source", "")),
                    "destination": fields.get("dst", fields.get("destination")),
                    "options": [o for o in fields.get("options", "rbind").split(":") if o]})
    return out


@app.command("run", context_settings={"allow_interspersed_args": False})
def run_cmd(
    ref: str,
    container_id: str,
    args: list[str] = typer.Argument(None, help="command and arguments (default: the image's)"),
    rm: bool = typer.Option(False, "--rm", help="remove the task and container when it exits"),
    detach: bool = typer.Option(False, "-d", "--detach"),
    tty_: bool = typer.Option(False, "-t", "--tty", help="allocate a terminal"),
    env: list[str] = typer.Option(None, "--env", help="KEY=VALUE"),
    cwd: Optional[str] = typer.Option(None, "--cwd"),
    user: Optional[str] = typer.Option(None, "--user", "-u"),
    mount: list[str] = typer.Option(None, "--mount", help="type=bind,src=/a,dst=/b,options=rbind:ro"),
    snapshotter: Optional[str] = typer.Option(None, "--snapshotter"),
    runtime: str = typer.Option("runc", "--runtime"),
    memory_limit: Optional[int] = typer.Option(None, "--memory-limit", help="bytes"),
    pids_limit: Optional[int] = typer.Option(None, "--pids-limit"),
    read_only: bool = typer.Option(False, "--read-only"),
    privileged: bool = typer.Option(False, "--privileged"),
    init: bool = typer.Option(True, "--init/--no-init",
                              help="run the command under a small init that forwards signals (tini)"),
) -> None:
    options: dict[str, Any] = {"env": env or [], "cwd": cwd, "user": user, "tty": tty_,
                               "stdin": not detach, "mounts": _mounts(mount or []), "memory": memory_limit,
                               "pids_limit": pids_limit, "readonly_rootfs": read_only, "privileged": privileged,
                               "hostname": container_id}
    if args:
        options["args"] = args

    async def go(c: Client) -> int:
        await c.create_container(container_id, ref, options, snapshotter=snapshotter, runtime=runtime, init=init)
        try:
            await c.create_task(container_id, terminal=tty_, stdin=not detach)
            if detach:
                await c.start_task(container_id)
                return 0
            code = await _attached_start(c, container_id, None, tty_)
        except BaseException:
            if rm:
                await _remove(c, container_id)
            raise
        if rm:
            await _remove(c, container_id)
        return code

    raise typer.Exit(run(go))


async def _attached_start(c: Client, task_id: str, exec_id: str | None, terminal: bool) -> int:
    """Attach before starting, so no output is lost; pump stdio; return the exit code."""
    io = await c.task_io(task_id, exec_id)
    att = await Attachment.connect(io["attach_socket"])

    async def resize(rows: int, cols: int) -> None:
        await c.resize_task(task_id, rows, cols, exec_id)

    with contextlib.closing(att), stdio.raw_terminal(terminal):
        if exec_id:
            await c.start_exec(task_id, exec_id)
        else:
            await c.start_task(task_id)
        await stdio.pump(att, stdin=True, terminal=terminal, resize=resize)
    status = await c.wait_task(task_id, exec_id)
    return int(status["exit_status"])


async def _remove(c: Client, container_id: str) -> None:
    try:
        await c.delete_task(container_id, force=True)
    except NotFound:
        pass
    await c.remove_container(container_id)


@containers_app.command("ls")
@containers_app.command("list", hidden=True)
def containers_ls(quiet: bool = typer.Option(False, "-q", "--quiet")) -> None:
    rows = run(lambda c: c.containers())
    if quiet:
        for r in rows:
            print(r["id"])
        return
    output.table(["CONTAINER", "IMAGE", "RUNTIME"], [[r["id"], r["image"], r["runtime"]] for r in rows])


@containers_app.command("info")
def containers_info(container_id: str) -> None:
    print(json.dumps(run(lambda c: c.container(container_id)), indent=2))


@containers_app.command("rm")
@containers_app.command("delete", hidden=True)
def containers_rm(container_ids: list[str]) -> None:
    async def go(c: Client) -> None:
        for cid in container_ids:
            await c.remove_container(cid)

    run(go)


@tasks_app.command("ls")
@tasks_app.command("list", hidden=True)
def tasks_ls() -> None:
    rows = run(lambda c: c.tasks())
    output.table(["TASK", "PID", "STATUS"], [[r["id"], str(r["pid"]), r["status"].upper()] for r in rows])


@tasks_app.command("start")
def tasks_start(task_id: str, detach: bool = typer.Option(False, "-d", "--detach")) -> None:
    async def go(c: Client) -> int:
        task = await c.task(task_id)
        if detach:
            await c.start_task(task_id)
            return 0
        return await _attached_start(c, task_id, None, task["terminal"])

    raise typer.Exit(run(go))


@tasks_app.command("kill")
def tasks_kill(task_id: str, signal: str = typer.Option("SIGTERM", "--signal", "-s"),
               all_: bool = typer.Option(False, "--all", "-a"),
               exec_id: Optional[str] = typer.Option(None, "--exec-id")) -> None:
    run(lambda c: c.kill_task(task_id, signal, all=all_, exec_id=exec_id))


@tasks_app.command("delete")
@tasks_app.command("rm", hidden=True)
def tasks_delete(task_ids: list[str], force: bool = typer.Option(False, "--force", "-f")) -> None:
    async def go(c: Client) -> None:
        for tid in task_ids:
            await c.delete_task(tid, force=force)

    run(go)


@tasks_app.command("ps")
def tasks_ps(task_id: str) -> None:
    output.table(["PID"], [[str(p)] for p in run(lambda c: c.task_pids(task_id))])


@tasks_app.command("pause")
def tasks_pause(task_id: str) -> None:
    run(lambda c: c.pause_task(task_id))


@tasks_app.command("resume")
def tasks_resume(task_id: str) -> None:
    run(lambda c: c.resume_task(task_id))


@tasks_app.command("metrics")
def tasks_metrics(task_id: str) -> None:
    m = run(lambda c: c.task_metrics(task_id))
    output.table(["METRIC", "VALUE"], [[k, "-" if v is None else str(v)] for k, v in m.items()])


@tasks_app.command("attach")
def tasks_attach(task_id: str) -> None:
    async def go(c: Client) -> int:
        task = await c.task(task_id)
        io = await c.task_io(task_id)
        att = await Attachment.connect(io["attach_socket"])

        async def resize(rows: int, cols: int) -> None:
            await c.resize_task(task_id, rows, cols)

        with contextlib.closing(att), stdio.raw_terminal(task["terminal"]):
            await stdio.pump(att, stdin=task["stdin"], terminal=task["terminal"], resize=resize)
        return int((await c.wait_task(task_id))["exit_status"])

    raise typer.Exit(run(go))


@tasks_app.command("exec", context_settings={"allow_interspersed_args": False})
def tasks_exec(
    task_id: str,
    args: list[str],
    exec_id: str = typer.Option(..., "--exec-id"),
    tty_: bool = typer.Option(False, "-t", "--tty"),
    detach: bool = typer.Option(False, "-d", "--detach"),
    env: list[str] = typer.Option(None, "--env"),
    cwd: Optional[str] = typer.Option(None, "--cwd"),
    user: Optional[str] = typer.Option(None, "--user", "-u"),
) -> None:
    async def go(c: Client) -> int:
        await c.add_exec(task_id, exec_id, args, env=env or [], cwd=cwd, user=user, terminal=tty_,
                         stdin=not detach)
        if detach:
            await c.start_exec(task_id, exec_id)
            return 0
        try:
            return await _attached_start(c, task_id, exec_id, tty_)
        finally:
            await c.delete_exec(task_id, exec_id)

    raise typer.Exit(run(go))


@app.command("events")
def events(topics: list[str] = typer.Argument(None, help="topic filters, e.g. /images/*")) -> None:
    async def go(c: Client) -> None:
        async for ev in c.events(topics or None):
            print(json.dumps(ev), flush=True)

    run(go)


@app.command("version")
def version() -> None:
    v = run(lambda c: c.version())
    print(f"Server:\n  Version: {v['version']}\n  API: {v['api']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
