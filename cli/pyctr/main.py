"""pyctr: a ctr-like CLI for the pyruntimed API. Parses options, calls the client, prints."""
from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Awaitable, Callable, Optional, TypeVar

import typer

from cli.pyctr import output
from runtime.client import DEFAULT_ADDRESS, Client, RuntimeError_

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
