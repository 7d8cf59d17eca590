"""pyruntimed configuration: defaults, TOML file, then command-line flags."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime.cri.config import CRIConfig
from runtime.events.journal import Retention, age_seconds

DEFAULT_ADDRESS = "/run/pyengine/runtime.sock"
DEFAULT_ROOT = "/var/lib/pyengine/runtime"
DEFAULT_STATE = "/run/pyengine/runtime"


class RegistryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mirrors: dict[str, list[str]] = Field(default_factory=dict)
    insecure: list[str] = Field(default_factory=list)
    config_path: str | None = None  # docker-style config.json with credentials


class EventsRetention(BaseModel):
    """[events_retention]: the journal keeps the newest `count` events, none older than `age` ("0": no bound)."""
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=Retention.count, ge=1)
    age: str = "168h"

    @field_validator("age")
    @classmethod
    def _age(cls, v: str) -> str:
        age_seconds(v)
        return v

    def retention(self) -> Retention:
        return Retention(self.count, age_seconds(self.age))


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = DEFAULT_ADDRESS
    root: str = DEFAULT_ROOT
    state: str = DEFAULT_STATE
    log_level: str = "info"
    socket_group: str | None = None
    default_snapshotter: str = "overlayfs"
    # Containers get cgroups at <cgroup_root>/<namespace>/<id> unless they ask for a parent.
    cgroup_root: str = "/pyengine"
    max_concurrent_downloads: int = Field(default=4, ge=1)
    # A task's captured output is a log file its monitor starts over past this size (0: unbounded): whoever
    # keeps logs (the engine's log drivers) reads it as it grows, so it is a buffer, not an archive.
    task_log_max_size: int = Field(default=64 * 1024 * 1024, ge=0)
    # OTLP/HTTP base URL for traces (docs/operations.md "Tracing"); unset: OTEL_EXPORTER_OTLP_ENDPOINT, or off.
    otlp_endpoint: str | None = None
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    events_retention: EventsRetention = Field(default_factory=EventsRetention)
    cri: CRIConfig = Field(default_factory=CRIConfig)
    # Per-plugin settings, keyed "type/id".
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)


def load(path: str | None, overrides: dict[str, Any]) -> Config:
    data: dict[str, Any] = {}
    if path:
        with open(Path(path), "rb") as fh:
            data = tomllib.load(fh)
    cri_address = overrides.pop("cri_address", None)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if cri_address is not None:
        data.setdefault("cri", {})["address"] = cri_address
    return Config.model_validate(data)
