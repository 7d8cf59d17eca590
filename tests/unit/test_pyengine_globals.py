"""The pyengine CLI's root options (`--version`, `-D`, `-l`, `--config`), `help`, and the exit codes of a bad
command line, against the docker CLI's: a wrong flag is 125, a wrong number of arguments or an unknown
command is 1. No daemon: every case ends before a request, or on a socket that is not there."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PYENGINE = Path(sys.executable).parent / "pyengine"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/engine.sock", **(env or {})}
    return subprocess.run([str(PYENGINE), *args], capture_output=True, text=True, timeout=60, env=environ)


@pytest.mark.parametrize(("args", "code"), [
    (("--bogus", "ps"), 125), (("ps", "--bogus"), 125), (("run", "-m", "lots", "busybox"), 125),
    (("run", "-m"), 125), (("ps", "extra"), 1), (("rm",), 1), (("volume", "create", "a", "b"), 1),
    (("nope",), 1), (("network", "nope"), 1),
])
def test_bad_command_lines_exit_as_docker(args: tuple[str, ...], code: int) -> None:
    out = _cli(*args)
    assert out.returncode == code and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version_flag(flag: str) -> None:
    out = _cli(flag)
    assert out.returncode == 0 and out.stdout.startswith("pyengine version ")


def test_help_command_prints_a_commands_help() -> None:
    whole, one, nested = _cli("help"), _cli("help", "ps"), _cli("help", "network", "ls")
    assert (whole.returncode, one.returncode, nested.returncode) == (0, 0, 0)
    assert "Usage: pyengine ps" in one.stdout and "Usage: pyengine network ls" in nested.stdout
    unknown = _cli("help", "nope")
    assert (unknown.returncode, unknown.stderr) == (1, "unknown help topic: nope\n")


def _untimed(text: str) -> str:
    # The two runs may straddle a second: compare the lines without their time= field.
    return re.sub(r'^time="[^"]*" ', "", text, flags=re.MULTILINE)


def test_log_levels() -> None:
    quiet, debug, level = _cli("ps"), _cli("-D", "ps"), _cli("--log-level", "debug", "ps")
    assert "level=debug" not in quiet.stderr
    assert 'level=debug msg="GET /_ping"' in debug.stderr and _untimed(debug.stderr) == _untimed(level.stderr)
    bad = _cli("-l", "loud", "ps")
    assert (bad.returncode, bad.stderr) == (1, "Unable to parse logging level: loud\n")


def test_config_names_the_config_directory(tmp_path: Path) -> None:
    # The current context is read from the directory --config names, not from $DOCKER_CONFIG's.
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "elsewhere"}))
    out = _cli("--config", str(tmp_path), "context", "show", env={"DOCKER_HOST": "", "DOCKER_CONFIG": "/nonexistent"})
    assert (out.returncode, out.stdout) == (0, "elsewhere\n"), out.stderr
