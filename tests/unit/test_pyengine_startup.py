"""What `pyengine` leaves out of its start-up: pydantic (Typer's value checks) for plain option types, and the
template engine unless a command is given a template. No timings: the modules loaded are the measure."""
from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import sys
sys.argv = ["pyengine", "-H", "unix:///nonexistent.sock", *{args!r}]
from cli.pyengine.main import main
try:
    main()
except SystemExit as e:
    code = e.code
print(code, "pydantic" in sys.modules, "cli.pyengine.gotemplate" in sys.modules)
"""


def _probe(*args: str) -> tuple[str, str, str]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(args=list(args))], capture_output=True, text=True,
                         timeout=60, check=True)
    code, pydantic, template = out.stdout.splitlines()[-1].split()
    return code, pydantic, template


@pytest.mark.parametrize(("args", "expected"), [
    (("version",), ("1", "False", "False")),
    # No daemon: as docker does, the template is run over the client's fields before the error is reported.
    (("version", "--format", "{{.Client.Version}}"), ("1", "False", "True")),
    (("ps", "--format", "{{.ID}}"), ("1", "False", "True")),
    (("ps", "-a", "-n", "2", "--filter", "status=exited"), ("1", "False", "False")),
    (("ps",), ("1", "False", "False")),
    (("stop", "web"), ("1", "False", "False")),
    (("run", "--rm", "--cpus", "1.5", "-e", "A=1", "busybox", "true"), ("125", "False", "False")),
    (("ps", "-n", "many"), ("125", "False", "False")),
    # A parser of the option's own is Typer's business, pydantic and all.
    (("run", "--memory", "64m", "busybox", "true"), ("125", "True", "False")),
])
def test_start_up_leaves_heavy_modules_out(args: tuple[str, ...], expected: tuple[str, str, str]) -> None:
    assert _probe(*args) == expected


def test_numbers_are_still_checked() -> None:
    out = subprocess.run([sys.executable, "-c", "from cli.pyengine.main import main; main()", "ps", "-n", "x"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 125 and "Invalid value for '-n' / '--last': 'x' is not a valid integer." in out.stderr


@pytest.mark.parametrize(("argv", "expected"), [
    (["version"], ({}, None)),
    (["-H", "unix:///x.sock", "--tlsverify", "--tlscacert=/ca.pem", "version", "-f", "{{.Client.Version}}"],
     ({"host": "unix:///x.sock", "verify": True, "ca": "/ca.pem"}, "{{.Client.Version}}")),
    (["--context", "remote", "version", "--format=json"], ({"context": "remote"}, "json")),
    (["version", "--help"], None),
    (["version", "-f"], None),
    (["--debug", "version"], None),
    (["-H"], None),
    (["ps"], None),
])
def test_the_version_fast_path_takes_only_plain_command_lines(argv: list[str], expected: object) -> None:
    from cli.pyengine.main import _version_line

    assert _version_line(argv) == expected


_TYPER_PROBE = """
import sys
sys.argv = ["pyengine", "-H", "unix:///nonexistent.sock", *{args!r}]
from cli.pyengine.main import main
try:
    main()
except SystemExit as e:
    code = e.code
print(code, "typer" in sys.modules)
"""


@pytest.mark.parametrize(("args", "expected"), [
    (("version",), "1 False"),
    (("version", "--help"), "0 True"),
    (("version", "--nope"), "125 True"),
])
def test_version_runs_without_typer(args: tuple[str, ...], expected: str) -> None:
    out = subprocess.run([sys.executable, "-c", _TYPER_PROBE.format(args=list(args))], capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.splitlines()[-1] == expected
