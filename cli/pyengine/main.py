"""pyengine: a docker-like CLI for pyengined. Parses options, calls the Engine API, prints.

Exit codes are docker's: a bad command line is 125 (like `docker run`'s own failures),
an error from the daemon is 1, and attached `run`/`start -a`/`exec` exit as the process did.
"""
from __future__ import annotations

import sys

import typer
# Typer vendors click: its exception classes are only reachable there.
from typer._click.exceptions import ClickException, NoArgsIsHelpError

# Imported for their commands, which register themselves on the app.
from cli.pyengine import (archive, containers, image_archives, imagemake, images, networks, ps,  # noqa: F401
                          registry, system, volumes)
from cli.pyengine.api import CLIError
from cli.pyengine.app import app

USAGE_ERROR = 125


def main() -> None:
    command = typer.main.get_command(app)
    try:
        result = command.main(prog_name="pyengine", standalone_mode=False)
    except NoArgsIsHelpError as e:
        # A bare `pyengine` or `pyengine system` asks for the help, as with docker.
        print(e.format_message())
        raise SystemExit(0) from None
    except ClickException as e:
        e.show()
        raise SystemExit(USAGE_ERROR) from None
    except CLIError as e:
        print(e.message, file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    raise SystemExit(result if isinstance(result, int) else 0)
