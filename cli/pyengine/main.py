"""pyengine: a docker-like CLI for pyengined. Parses options, calls the Engine API, prints.

Exit codes are docker's: a bad command line is 125 (like `docker run`'s own failures),
an error from the daemon is 1, and attached `run`/`start -a`/`exec` exit as the process did.

`pyengine version` (with the root's options and -f) is run without Typer: importing it and building the
command takes most of a start-up, and `version` is what scripts run to see whether a daemon is there. Any
other command line, or a `version` one with anything else on it (--help, an unknown option), goes through
Typer (commands.py), which gives the same answer for what the fast path takes.
"""
from __future__ import annotations

import os
import sys

from cli.pyengine.api import CLIError

# The root's options (app.py) as the fast path reads them: those taking a value, and the flags.
_VALUED = {"-H": "host", "--host": "host", "-c": "context", "--context": "context", "--tlscacert": "ca",
           "--tlscert": "cert", "--tlskey": "key"}
_FLAGS = {"--tls": "tls", "--tlsverify": "verify"}


def _version_line(argv: list[str]) -> tuple[dict[str, object], str | None] | None:
    """The root's options and the format of a plain `version` command line; None for any other."""
    options: dict[str, object] = {}
    i = 0
    while i < len(argv) and argv[i] != "version":
        name, eq, value = argv[i].partition("=")
        if argv[i] in _FLAGS:
            options[_FLAGS[argv[i]]] = True
            i += 1
        elif eq and name.startswith("--") and name in _VALUED:
            options[_VALUED[name]] = value
            i += 1
        elif argv[i] in _VALUED and i + 1 < len(argv):
            options[_VALUED[argv[i]]] = argv[i + 1]
            i += 2
        else:
            return None
    if i == len(argv):
        return None
    rest = argv[i + 1:]
    if not rest:
        return options, None
    if len(rest) == 2 and rest[0] in ("-f", "--format"):
        return options, rest[1]
    if len(rest) == 1 and rest[0].startswith("--format="):
        return options, rest[0][len("--format="):]
    return None


def _fast_version(options: dict[str, object], format_: str | None) -> None:
    from cli.pyengine import hosts, versioncmd
    from cli.pyengine.api import Engine

    def engine() -> Engine:
        tls = hosts.TLSOptions(tls=bool(options.get("tls")), verify=bool(options.get("verify")),
                               ca=options.get("ca"), cert=options.get("cert"),  # type: ignore[arg-type]
                               key=options.get("key"))  # type: ignore[arg-type]
        return Engine(*hosts.endpoint(options.get("host"), options.get("context"), tls))  # type: ignore[arg-type]

    versioncmd.show(engine, format_, hosts.context_in_use(options.get("context")))  # type: ignore[arg-type]


def main() -> None:
    try:
        fast = None if any(v.startswith("_PYENGINE_COMPLETE") for v in os.environ) else _version_line(sys.argv[1:])
        if fast is not None:
            _fast_version(*fast)
            raise SystemExit(0)
        from cli.pyengine.commands import run

        run()
    except CLIError as e:
        print(e.message, file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    except BrokenPipeError:
        # The reader went (`| head`): end quietly, as the docker CLI dies of its SIGPIPE (the shell's 141).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None
