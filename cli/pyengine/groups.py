"""docker's management groups (`container`, `image`, `builder`, and `system events`/`system info`): the
same commands as the short forms, under docker's subcommand names. Imported after every command module,
since it shares their registrations."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import copy
from typing import Annotated, Any, Callable

import typer

from cli.pyengine import prune
from cli.pyengine.api import path_quote
from cli.pyengine.app import app, engine, inspect_each, system_app

container_app = typer.Typer(help="Manage containers.", no_args_is_help=True)
image_app = typer.Typer(help="Manage images.", no_args_is_help=True)
builder_app = typer.Typer(help="Manage builds.", no_args_is_help=True)
app.add_typer(container_app, name="container")
app.add_typer(image_app, name="image")
app.add_typer(builder_app, name="builder")

_FORMAT = Annotated[str | None, typer.Option("-f", "--format", help="Go-template-like format.")]


def _share(group: typer.Typer, names: dict[str, str]) -> None:
    """Register top-level commands (value) on `group` under docker's subcommand names (key), with their
    options and context settings."""
    top = {info.name or info.callback.__name__: info for info in app.registered_commands if info.callback}
    for name, source in names.items():
        info = copy.copy(top[source])
        info.name = name
        group.registered_commands.append(info)


def _register(group: typer.Typer, name: str, command: Callable[..., Any]) -> None:
    group.command(name)(command)


def container_inspect(
    names: Annotated[list[str], typer.Argument(metavar="CONTAINER")],
    format_: _FORMAT = None,
    size: Annotated[bool, typer.Option("-s", "--size", help="Display total file sizes.")] = False,
) -> None:
    """Display detailed information on one or more containers."""
    e = engine()
    inspect_each(names, lambda name: e.get(f"/containers/{path_quote(name)}/json", {"size": 1 if size else None}),
                 format_)


def image_inspect(names: Annotated[list[str], typer.Argument(metavar="IMAGE")], format_: _FORMAT = None,
                  platform: Annotated[str | None, typer.Option(
                      "--platform", help="Refused: pyengined keeps one platform per image.")] = None) -> None:
    """Display detailed information on one or more images."""
    from cli.pyengine.images import refuse_platform

    refuse_platform("image inspect", platform)
    e = engine()
    inspect_each(names, lambda name: e.get(f"/images/{path_quote(name)}/json"), format_)


_share(container_app, {
    "ls": "ps", "list": "ps", "ps": "ps", "remove": "rm", "create": "create", "run": "run", "start": "start",
    "stop": "stop", "restart": "restart", "kill": "kill", "rm": "rm", "pause": "pause", "unpause": "unpause",
    "rename": "rename", "update": "update", "wait": "wait", "stats": "stats", "diff": "diff", "export": "export",
    "attach": "attach", "exec": "exec", "logs": "logs", "top": "top", "port": "port", "cp": "cp", "commit": "commit"})
_register(container_app, "inspect", container_inspect)
_register(container_app, "prune", prune.container_prune)

_share(image_app, {
    "ls": "images", "list": "images", "pull": "pull", "push": "push", "rm": "rmi", "remove": "rmi",
    "history": "history", "tag": "tag", "build": "build", "save": "save", "load": "load", "import": "import"})
_register(image_app, "inspect", image_inspect)
_register(image_app, "prune", prune.image_prune)

_share(builder_app, {"build": "build"})
_register(builder_app, "prune", prune.builder_prune)

_share(system_app, {"events": "events", "info": "info"})
