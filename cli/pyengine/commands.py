"""Every command registered on the Typer application, and a command line run through it (main.py's path for
all but the fast ones)."""
from __future__ import annotations

import copy
import os
import sys
from typing import Any

import typer
# Typer vendors click: its exception classes are only reachable there.
from typer._click.exceptions import (BadOptionUsage, BadParameter, ClickException, MissingParameter,
                                     NoArgsIsHelpError, NoSuchOption, UsageError)

# Imported for their commands, which register themselves on the app.
from cli.pyengine import (archive, attach, containers, contexts, image_archives, imagemake, images,  # noqa: F401
                          lifecycle, networks, prune, ps, registry, stats, system, volumes)
# The management groups share the commands registered above, so they come last.
from cli.pyengine import groups  # noqa: F401,I001
from cli.pyengine.api import CLIError
from cli.pyengine.app import app
from cli.pyengine.goflags import bool_values

USAGE_ERROR = 125


def _plain_values_without_pydantic() -> None:
    """Typer checks every value it has not already got as a bool through a pydantic TypeAdapter, built when
    the command runs even for options left unset, and the first one costs the import of pydantic (60-110 ms,
    most of a command's start-up). Here an unset option stays unset without one, `str`/`list[str]` values
    are taken as given (the command line gives strings), `int`/`float` ones are int() and float() of them
    (refused as a usage error), flags already bools pass; anything else (a parser of the option's own,
    files) is left to Typer's path, and so is everything if Typer's internals are not the ones this was
    written against."""
    try:
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam, build_runtime_param
        from typer.core import _TyperParameter
    except ImportError:
        return
    built = getattr(_TyperParameter, "get_runtime_param", None)
    if built is None:
        return
    numbers = {int: "integer", float: "number"}

    class Plain(RuntimeParam):
        # RuntimeParam.coerce answers unset values itself; only given ones get here.
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = self.annotation if self.parameter_info.parser is None else None
            if kind in (str, list[str]):
                return list(value) if isinstance(value, tuple) else value
            if kind in (bool, bool | None) and isinstance(value, bool):
                return value
            if kind in numbers and type(value) is kind:  # a default
                return value
            if kind in numbers and isinstance(value, str):
                try:
                    return kind(value.strip())
                except ValueError:
                    raise BadParameter(f"{value!r} is not a valid {numbers[kind]}.", ctx=ctx, param=param) from None
            return build_runtime_param(param.type_descriptor)._coerce_value(value, param, ctx)

    def get_runtime_param(self: Any) -> Any:
        descriptor = self.type_descriptor
        if self._runtime_param is None and descriptor.file_annotation is None:
            self._runtime_param = Plain(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
        return built(self)

    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]


# The root's options that take a value, and those that are about the whole CLI (its help, completion).
_VALUED = frozenset({"-H", "--host", "-c", "--context", "--tlscacert", "--tlscert", "--tlskey", "--config", "-l",
                     "--log-level"})
_WHOLE = frozenset({"--help", "-v", "--version", "--install-completion", "--show-completion"})


def _invoked(argv: list[str]) -> str | None:
    """The command a command line names, past the root's options; None if it names none or asks about the
    whole CLI."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _WHOLE or arg == "--":
            return None
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _command_for(argv: list[str]) -> Any:
    """The click command to run: the root with only the command invoked, when there is one. Typer builds a
    click command from every registered signature; that took about a third of each start-up for a command
    line that needs one of them. A completion request, the root's help, or an unknown name get them all."""
    name = None if any(v.startswith("_PYENGINE_COMPLETE") for v in os.environ) else _invoked(argv)
    if name is not None:
        commands = [c for c in app.registered_commands if (c.name or typer.main.get_command_name(
            c.callback.__name__ if c.callback else "")) == name]
        groups = [g for g in app.registered_groups if g.name == name]
        if commands or groups:
            only = copy.copy(app)
            only.registered_commands, only.registered_groups = commands, groups
            return typer.main.get_command(only)
    return typer.main.get_command(app)


def _help_topic(argv: list[str]) -> list[str] | None:
    """`pyengine help [COMMAND...]` as the command line that asks for that help: `COMMAND... --help`."""
    name = _invoked(argv)
    if name != "help":
        return None
    at = argv.index("help")
    topic = argv[at + 1:]
    group: Any = typer.main.get_command(app)
    for word in topic:
        group = (getattr(group, "commands", None) or {}).get(word)
        if group is None:
            raise CLIError(f"unknown help topic: {' '.join(topic)}")
    return [*argv[:at], *topic, "--help"]


def _exit_code(e: ClickException) -> int:
    """docker's: a wrong flag or flag value is 125, a wrong number of arguments or an unknown command 1."""
    if isinstance(e, MissingParameter) and "argument" in (e.param_type, getattr(e.param, "param_type_name", None)):
        return 1
    if isinstance(e, UsageError) and not isinstance(e, (BadParameter, NoSuchOption, BadOptionUsage)):
        return 1
    return USAGE_ERROR


def run() -> None:
    _plain_values_without_pydantic()
    argv = _help_topic(sys.argv[1:]) or sys.argv[1:]
    command = _command_for(argv)
    args = bool_values(command, argv)
    try:
        result = command.main(args, prog_name="pyengine", standalone_mode=False)
    except NoArgsIsHelpError as e:
        # A bare `pyengine` or `pyengine system` asks for the help, as with docker.
        print(e.format_message())
        raise SystemExit(0) from None
    except ClickException as e:
        e.show()
        raise SystemExit(_exit_code(e)) from None
    raise SystemExit(result if isinstance(result, int) else 0)
