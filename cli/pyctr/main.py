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

from cli.pyctr import archives, output, push, tasks
from cli.pyctr.since import since
from runtime.client import DEFAULT_ADDRESS, Client, NotFound, RuntimeError_

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
        output.lines(r["name"] for r in rows)
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
    """As ctr: the labels given are set over the namespace's own; `KEY=` removes KEY."""
    async def go(c: Client) -> None:
        given = output.parse_labels(a.labels)
        current: dict[str, str] = next((n["labels"] for n in await c.namespaces() if n["name"] == a.name), {})
        merged = {**current, **given}
        await c.set_namespace_labels(a.name, {k: v for k, v in merged.items() if v})

    call(a, go)


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
        output.lines(r.name for r in rows)
        return
    output.table(["REF", "TYPE", "DIGEST", "SIZE"],
                 [[r.name, r.target.mediaType, r.target.digest, output.size(r.target.size)]
                  for r in rows])


def images_rm(a: argparse.Namespace) -> None:
    async def go(c: Client) -> None:
        for r in a.refs:
            try:
                await c.remove_image(r)
            except NotFound:
                # As ctr: a name that is not there is a warning, not a failure.
                print(f"pyctr: image {r} not found, skipping", file=sys.stderr)
                continue
            print(r)

    call(a, go)


def content_ls(a: argparse.Namespace) -> None:
    rows = call(a, lambda c: c.content())
    if a.quiet:
        output.lines(r.digest for r in rows)
        return
    output.table(["DIGEST", "SIZE", "LABELS"],
                 [[r.digest, output.size(r.size), output.labels(r.labels)] for r in rows])


def content_rm(a: argparse.Namespace) -> None:
    async def go(c: Client) -> None:
        for d in a.digests:
            with contextlib.suppress(NotFound):  # as ctr: removing what is not there succeeds
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
    """As ctr: the mount commands that put the snapshot at `target`."""
    for m in call(a, lambda c: c.snapshot_mounts(a.snapshotter, a.key)):
        print(f"mount -t {m.type} {m.source} {a.target} -o {','.join(m.options)}")


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
    for names, func, help, args in ((["ls", "list"], snapshots_ls, "list snapshots", []),
                                    (["usage"], snapshots_usage, "disk usage of a snapshot", ["key"]),
                                    (["mounts"], snapshots_mounts, "mounts of a snapshot", ["target", "key"])):
        p = _cmd(sn, names, func, help)
        p.add_argument("--snapshotter", default=snap_default, help="env PYCTR_SNAPSHOTTER")
        for arg in args:
            p.add_argument(arg)

    tasks.add_commands(sub, _group, _cmd, call)

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
