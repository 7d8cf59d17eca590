"""daemon.json's `runtimes` and `default-runtime` (and --add-runtime) as dockerd takes them: a named runtime's binary
runs every command of its containers' tasks, with its runtimeArgs first; `docker info` lists them; an unknown
`--runtime` is dockerd's 400."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine

RUNC = shutil.which("runc") or "/usr/sbin/runc"


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A wrapper around runc that writes each invocation's arguments to a file, one line each."""
    where = tmp_path_factory.mktemp("rt-wrapper")
    record = where / "calls"
    script = where / "recording-runc"
    script.write_text(f'#!/bin/sh\necho "$*" >> {record}\nexec {RUNC} "$@"\n')
    script.chmod(0o755)
    return script, record


def _settings(script: Path, **more: dict[str, str]) -> str:
    return json.dumps({"runtimes": {"recording": {"path": str(script), "runtimeArgs": ["--debug"]}, **more},
                       "default-runtime": "recording"})


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, recorder) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "daemon.json"
    path.write_text(_settings(recorder[0]))
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry, config: Path) -> Iterator[EngineDaemon]:
    extra = ["--config-file", str(config), "--add-runtime", f"plain={RUNC}"]
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host, extra_args=extra) as e:
        yield e


@pytest.fixture(autouse=True)
def clean(engine: EngineDaemon, recorder) -> Iterator[None]:
    recorder[1].unlink(missing_ok=True)
    yield
    engine.reset()


def cli(engine: EngineDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=engine.env(), capture_output=True, text=True, timeout=60,
                          check=False)


def calls(record: Path) -> list[list[str]]:
    return [line.split() for line in record.read_text().splitlines()] if record.exists() else []


def test_info_lists_the_runtimes_and_the_default(engine, recorder) -> None:
    info = json.loads(cli(engine, "info", "--format", "{{json .}}").stdout)
    assert info["DefaultRuntime"] == "recording"
    assert info["Runtimes"] == {"runc": {"path": "runc"}, "io.containerd.runc.v2": {"path": "runc"},
                                "plain": {"path": RUNC},
                                "recording": {"path": str(recorder[0]), "runtimeArgs": ["--debug"]}}


def test_the_default_runtime_runs_every_command_of_the_task(engine, recorder) -> None:
    run = cli(engine, "run", "-d", "--name", "rec", "busybox", "sleep", "60")
    assert run.returncode == 0, run.stderr
    assert cli(engine, "exec", "rec", "true").returncode == 0
    assert cli(engine, "stop", "-t", "1", "rec").returncode == 0
    made = calls(recorder[1])
    commands = [c[c.index("--log-format=json") + 1] if "--log-format=json" in c else c[c.index("json") + 1]
                for c in made]
    assert {"create", "start", "exec", "kill"} <= set(commands), made
    # runtimeArgs come first, before the runtime daemon's own options.
    assert all(c[0] == "--debug" for c in made), made
    hc = json.loads(cli(engine, "inspect", "rec").stdout)[0]["HostConfig"]
    assert hc["Runtime"] == "recording"


def test_a_named_runtime_and_the_stock_one(engine, recorder) -> None:
    for name in ("runc", "io.containerd.runc.v2", "plain"):
        run = cli(engine, "run", "--rm", "--runtime", name, "busybox", "echo", name)
        assert (run.returncode, run.stdout) == (0, f"{name}\n"), run.stderr
    assert calls(recorder[1]) == []
    bad = cli(engine, "run", "--rm", "--runtime", "nosuch", "busybox", "true")
    assert bad.returncode == 125 and "Unknown runtime specified nosuch" in bad.stderr


def test_runtimes_reload_and_a_missing_binary_fails_the_start(engine, config: Path, recorder) -> None:
    assert engine.proc is not None
    config.write_text(_settings(recorder[0], missing={"path": "/nonexistent/runc"}))
    engine.proc.send_signal(signal.SIGHUP)
    try:
        while "missing" not in json.loads(cli(engine, "info", "--format", "{{json .Runtimes}}").stdout):
            time.sleep(0.05)  # the reload runs beside the daemon's other work; a hang fails the test's timeout
        out = cli(engine, "run", "--rm", "--runtime", "missing", "busybox", "true")
        assert out.returncode != 0
        assert "runtime binary '/nonexistent/runc': no such executable file" in out.stderr
    finally:
        config.write_text(_settings(recorder[0]))
        engine.proc.send_signal(signal.SIGHUP)
        while "missing" in json.loads(cli(engine, "info", "--format", "{{json .Runtimes}}").stdout):
            time.sleep(0.05)


def test_dockerds_checks_of_the_configuration(tmp_path: Path) -> None:
    pyengined = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pyengined")
    for config, message in [({"runtimes": {"runc": {"path": RUNC}}}, "runtime name 'runc' is reserved"),
                            ({"runtimes": {"io.containerd.runc.v2": {"path": RUNC}}},
                             "runtime name 'io.containerd.runc.v2' is reserved"),
                            ({"default-runtime": "nosuch"}, "specified default runtime 'nosuch' does not exist"),
                            ({"runtimes": {"x": {}}}, "runtime x: either a runtimeType or a path must be configured")]:
        path = tmp_path / "daemon.json"
        path.write_text(json.dumps(config))
        out = subprocess.run([pyengined, "--config-file", str(path), "-H", f"unix://{tmp_path}/s.sock",
                              "--data-root", str(tmp_path / "d"), "--exec-root", str(tmp_path / "e")],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 2 and message in out.stderr, out.stderr
