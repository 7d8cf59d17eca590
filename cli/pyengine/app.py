"""The Typer application every command module registers on, and the global options."""
from __future__ import annotations

import sys
from typing import Annotated, Callable

import typer

from cli.pyengine.api import DEFAULT_HOST, CLIError, Engine

app = typer.Typer(name="pyengine", help="A docker-like CLI for pyengined.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
system_app = typer.Typer(help="Manage pyengine.", no_args_is_help=True)
app.add_typer(system_app, name="system")

_host = DEFAULT_HOST


@app.callback()
def _global_options(
    host: Annotated[str, typer.Option("-H", "--host", envvar="PYENGINE_HOST", show_envvar=True,
                                      help="Daemon socket to connect to (unix:///path).")] = DEFAULT_HOST,
) -> None:
    global _host
    _host = host


def engine() -> Engine:
    return Engine(_host)


def for_each(targets: list[str], action: Callable[[str], None]) -> None:
    """docker's multi-target commands: report each failure, carry on, exit 1 if any failed."""
    failed = False
    for target in targets:
        try:
            action(target)
        except CLIError as e:
            print(e.message, file=sys.stderr)
            failed = True
    if failed:
        raise SystemExit(1)
