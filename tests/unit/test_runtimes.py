"""OCI runtimes by name (engine/runtimes.py) and the runtime daemon's check of a task's own binary."""
from __future__ import annotations

import pytest

from engine.config import Config, load
from engine.errors import InvalidArgument
from engine.runtimes import RuntimeEntry, RuntimeTable, check, from_flags
from runtime.errors import InvalidArgument as RuntimeInvalidArgument
from runtime.tasks.shim import RuntimeBinary, runtime_binary


@pytest.mark.parametrize("runtimes, default, message", [
    ({"runc": RuntimeEntry(path="/x")}, None, "runtime name 'runc' is reserved"),
    ({}, "nosuch", "specified default runtime 'nosuch' does not exist"),
    ({"x": RuntimeEntry()}, None, "runtime x: either a runtimeType or a path must be configured"),
    ({"x": RuntimeEntry(runtime_type="io.containerd.kata.v2")}, None, "runtimeType .* is not supported"),
    ({"x": RuntimeEntry(path="/x", options={"a": 1})}, None, "options cannot be used with a path runtime"),
])
def test_dockerds_configuration_checks(runtimes: dict[str, RuntimeEntry], default: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check(runtimes, default)


def test_flags_and_file_together(tmp_path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"runtimes": {"a": {"path": "/bin/a", "runtimeArgs": ["--x"]}}}')
    cfg = load(str(path), {"runtimes": from_flags(["b=/bin/b"]), "default_runtime": "b"})
    table = RuntimeTable(cfg)
    assert (table.default, table.resolve(None), table.resolve("runc")) == ("b", "b", "runc")
    assert table.binary("a") == ("/bin/a", ["--x"]) and table.binary("runc") is None
    assert table.info() == {"runc": {"path": "runc"}, "io.containerd.runc.v2": {"path": "runc"},
                            "a": {"path": "/bin/a", "runtimeArgs": ["--x"]}, "b": {"path": "/bin/b"}}
    assert table.resolve("io.containerd.runc.v2") == "io.containerd.runc.v2"
    assert table.binary("io.containerd.runc.v2") is None
    with pytest.raises(InvalidArgument, match="^Unknown runtime specified c$"):
        table.resolve("c")
    with pytest.raises(ValueError, match="expected NAME=PATH"):
        from_flags(["nopath"])
    with pytest.raises(ValueError, match="specified default runtime 'c' does not exist"):
        load(None, {"default_runtime": "c"})
    assert RuntimeTable(Config()).default == "runc"


def test_a_tasks_own_binary_is_checked_by_the_runtime(tmp_path) -> None:
    assert runtime_binary(None, []) is None
    assert runtime_binary("sh", ["-e"]) == RuntimeBinary(runtime_binary("sh", []).path, ("-e",))  # type: ignore[union-attr]
    for bad in ("/nonexistent/runc", "relative/runc", "no-such-runtime-binary", str(tmp_path)):
        with pytest.raises(RuntimeInvalidArgument, match="no such executable file"):
            runtime_binary(bad, [])
    with pytest.raises(RuntimeInvalidArgument, match="need a runtime_binary"):
        runtime_binary(None, ["--x"])
