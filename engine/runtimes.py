"""OCI runtimes by name: daemon.json's `runtimes` and `default-runtime` (the flags `--add-runtime NAME=PATH` and
`--default-runtime`), checked with dockerd's words.

A configured runtime is a binary that speaks runc's command line (a wrapper around runc, crun...): the runtime
daemon runs it in runc's place for the tasks of the containers that name it (`HostConfig.Runtime`), with its
`runtimeArgs` before every command, as dockerd has containerd's runc shim run it. `runc` is the stock runtime,
which a configuration may not redefine. The name is resolved to a binary at each start, as dockerd does, so a
runtime whose entry changes (SIGHUP) applies to the next start of its containers.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import InvalidArgument

STOCK = "runc"
# dockerd's name for the stock runtime as containerd's shim type: the same runc, by either name.
STOCK_ALIASES = (STOCK, "io.containerd.runc.v2")


class RuntimeEntry(BaseModel):
    """One entry of daemon.json's `runtimes`."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    path: str = ""
    runtime_args: list[str] = Field(default_factory=list, alias="runtimeArgs")
    # containerd shims by type: this engine's runtime daemon has no shim API, so only `path` runtimes are taken.
    runtime_type: str = Field(default="", alias="runtimeType")
    options: dict[str, object] = Field(default_factory=dict)


def check(runtimes: Mapping[str, RuntimeEntry], default: str | None) -> None:
    """dockerd's checks of the configuration (ValueError: the daemon refuses to start or to reload)."""
    for name in STOCK_ALIASES:
        if name in runtimes:
            raise ValueError(f"runtime name '{name}' is reserved")
    for name, entry in runtimes.items():
        if entry.runtime_type:
            raise ValueError(f"runtime {name}: runtimeType {entry.runtime_type!r} is not supported by this engine: "
                             "configure a path to a runc-compatible binary")
        if not entry.path:
            raise ValueError(f"runtime {name}: either a runtimeType or a path must be configured")
        if entry.options:
            raise ValueError(f"runtime {name}: options cannot be used with a path runtime")
    if default and default not in STOCK_ALIASES and default not in runtimes:
        raise ValueError(f"specified default runtime '{default}' does not exist")


def from_flags(flags: list[str]) -> dict[str, RuntimeEntry]:
    """`--add-runtime NAME=PATH`, repeatable."""
    out: dict[str, RuntimeEntry] = {}
    for flag in flags:
        name, eq, path = flag.partition("=")
        if not eq or not name or not path:
            raise ValueError(f"--add-runtime {flag!r}: expected NAME=PATH")
        out[name] = RuntimeEntry(path=path)
    return out


class RuntimeSettings(Protocol):
    """Where the table reads the configuration from: the daemon's Config, which a reload updates in place."""

    runtimes: dict[str, RuntimeEntry]
    default_runtime: str | None


class RuntimeTable:
    def __init__(self, settings: RuntimeSettings) -> None:
        self._settings = settings

    @property
    def default(self) -> str:
        return self._settings.default_runtime or STOCK

    def resolve(self, name: str | None) -> str:
        """HostConfig.Runtime at create: unset is the daemon's default; an unknown name is dockerd's 400."""
        name = name or self.default
        if name not in STOCK_ALIASES and name not in self._settings.runtimes:
            raise InvalidArgument(f"Unknown runtime specified {name}")
        return name

    def binary(self, name: str | None) -> tuple[str, list[str]] | None:
        """The binary and its arguments a task of runtime `name` runs with; None for the stock runc."""
        name = self.resolve(name)
        if name in STOCK_ALIASES:
            return None
        entry = self._settings.runtimes[name]
        return entry.path, list(entry.runtime_args)

    def info(self) -> dict[str, dict[str, object]]:
        """/info's `Runtimes`."""
        out: dict[str, dict[str, object]] = {name: {"path": STOCK} for name in STOCK_ALIASES}
        for name, entry in sorted(self._settings.runtimes.items()):
            out[name] = {"path": entry.path, **({"runtimeArgs": entry.runtime_args} if entry.runtime_args else {})}
        return out
