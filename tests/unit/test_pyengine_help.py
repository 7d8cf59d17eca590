"""Every `pyengine` command prints its help: help texts are rich markup, where a bare `[/X]` is a closing tag."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

import cli.pyengine.commands  # noqa: F401  (registers every command on the app)
from cli.pyengine.app import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    # Typer vendors its own click: groups are told by their commands, not by a click class.
    yield path
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "pyengine" for p in COMMANDS])
def test_help_renders(path: tuple[str, ...]) -> None:
    pyengine = Path(sys.executable).parent / "pyengine"
    out = subprocess.run([str(pyengine), *path, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Usage" in out.stdout, out.stderr[-2000:]
