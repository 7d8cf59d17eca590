"""Shell completion of names (bash, zsh, fish through Typer): containers, images, networks and volumes are
asked of the daemon the command line points at. A daemon that cannot be reached completes nothing."""
# No `from __future__ import annotations`: Typer reads these functions' annotations to call them.

from typing import Any, Callable

import typer

from cli.pyengine import hosts
from cli.pyengine.api import CLIError, Engine


def _engine(ctx: typer.Context) -> Engine:
    root = ctx.find_root()
    return Engine(*hosts.endpoint(root.params.get("host"), root.params.get("context"), hosts.TLSOptions(
        tls=bool(root.params.get("tls")), verify=bool(root.params.get("tlsverify")), ca=root.params.get("tlscacert"),
        cert=root.params.get("tlscert"), key=root.params.get("tlskey"))))


def _names(ctx: typer.Context, incomplete: str, listing: Callable[[Engine], list[str]]) -> list[str]:
    try:
        names = listing(_engine(ctx))
    except (CLIError, OSError, ValueError):
        return []
    return sorted(n for n in set(names) if n.startswith(incomplete))


def _containers(e: Engine, query: dict[str, Any]) -> list[str]:
    return [n.removeprefix("/") for c in e.get("/containers/json", query) for n in c.get("Names") or []
            if "/" not in n.removeprefix("/")]


def containers(ctx: typer.Context, incomplete: str) -> list[str]:
    return _names(ctx, incomplete, lambda e: _containers(e, {"all": 1}))


def images(ctx: typer.Context, incomplete: str) -> list[str]:
    return _names(ctx, incomplete, lambda e: [t for i in e.get("/images/json") for t in i.get("RepoTags") or []
                                              if t != "<none>:<none>"])


def networks(ctx: typer.Context, incomplete: str) -> list[str]:
    return _names(ctx, incomplete, lambda e: [n["Name"] for n in e.get("/networks")])


def volumes(ctx: typer.Context, incomplete: str) -> list[str]:
    return _names(ctx, incomplete, lambda e: [v["Name"] for v in e.get("/volumes").get("Volumes") or []])


def objects(ctx: typer.Context, incomplete: str) -> list[str]:
    """inspect's names: any of the four."""
    return sorted(set(containers(ctx, incomplete) + images(ctx, incomplete) + networks(ctx, incomplete)
                      + volumes(ctx, incomplete)))
