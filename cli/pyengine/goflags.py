"""Values on bool flags, as the docker CLI (Go's pflag) takes them: `--rm=false`, `-d=true`, `--init=0`.

Click's flags take no value, so a command line is rewritten before click parses it: each `--flag=VALUE`
(or `-f=VALUE`) naming a flag of the invoked command becomes the bare flag when VALUE is true, and is
dropped when it is false, with False made that option's default. A flag whose unset value leaves the
choice to the daemon (`--init`) so sends false, as docker's does. A value Go's strconv.ParseBool
refuses is refused with the docker CLI's words.

The defaults are set on the click command built for this one command line, never on anything shared:
click's default_map would do, but it keys options and subcommands alike by name, and `context` is both.
"""
from __future__ import annotations

from typing import Any

from cli.pyengine.api import CLIError
from cli.pyengine.runopts import GO_BOOLS, USAGE


def bool_values(root: Any, argv: list[str]) -> list[str]:
    """The command line for click to parse, for `root`, the click command built to run `argv`."""
    out: list[str] = []
    command = root
    i = 0
    while i < len(argv):
        flags, valued = _options(command)
        options_only = not _interspersed(command) and not hasattr(command, "commands")
        while i < len(argv):
            arg = argv[i]
            i += 1
            if arg == "--":
                return out + argv[i - 1:]
            if arg.startswith("--"):
                name, eq, value = arg.partition("=")
                if eq and name in flags:
                    if _go_bool(flags[name], value):
                        out.append(name)
                    else:
                        flags[name].default = False
                    continue
                out.append(arg)
                if not eq and arg in valued and i < len(argv):
                    out.append(argv[i])
                    i += 1
            elif arg.startswith("-") and len(arg) > 1:
                tokens, wants_value = _short_run(arg, flags, valued)
                out.extend(tokens)
                if wants_value and i < len(argv):
                    out.append(argv[i])
                    i += 1
            elif hasattr(command, "commands") and arg in command.commands:
                out.append(arg)
                command = command.commands[arg]
                break
            elif options_only:
                return out + argv[i - 1:]
            else:
                out.append(arg)
        else:
            break
    return out


def _options(command: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """The command's bool flags by each of their names, and the names of its options that take a value."""
    flags: dict[str, Any] = {}
    valued: set[str] = set()
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") != "option":
            continue
        if getattr(param, "is_flag", False) and getattr(param, "is_bool_flag", False) and not param.secondary_opts:
            flags.update(dict.fromkeys(param.opts, param))
        elif not getattr(param, "is_flag", False) and not getattr(param, "count", False):
            valued.update(param.opts)
    return flags, frozenset(valued)


def _interspersed(command: Any) -> bool:
    return bool(getattr(command, "context_settings", {}).get(
        "allow_interspersed_args", getattr(command, "allow_interspersed_args", True)))


def _short_run(arg: str, flags: dict[str, Any], valued: frozenset[str]) -> tuple[list[str], bool]:
    """A run of short options as pflag reads it (`-it`, `-d=false`, `-e=A`, `-p80:80`, `-e` VALUE): the
    arguments for click, and whether the next argument is the last option's value."""
    run = "-"
    for k, letter in enumerate(arg[1:], start=1):
        rest = arg[k + 1:]
        if f"-{letter}" in flags:
            if rest.startswith("="):
                if _go_bool(flags[f"-{letter}"], rest[1:]):
                    run += letter
                else:
                    flags[f"-{letter}"].default = False
                return ([run] if run != "-" else []), False
            run += letter
        elif f"-{letter}" in valued:
            before = [run] if run != "-" else []
            if rest.startswith("="):
                return before + [f"-{letter}", rest[1:]], False
            return before + [f"-{letter}{rest}"], not rest
        else:
            return [arg], False
    return [run], False


def _go_bool(param: Any, value: str) -> bool:
    if value not in GO_BOOLS:
        raise CLIError(f'invalid argument "{value}" for "{_pflag_name(param)}" flag: '
                       f'strconv.ParseBool: parsing "{value}": invalid syntax', USAGE)
    return GO_BOOLS[value]


def _pflag_name(param: Any) -> str:
    # pflag's words for a flag: "-d, --detach", or "--rm" when it has no shorthand.
    return ", ".join(sorted(param.opts, key=len))
