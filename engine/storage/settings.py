"""daemon.json's storage keys: `storage-budget` and `removed-logs-retention`, checked at start.

Sizes take go-units' human forms (`10GB`, `512MiB`, `1g`, or a plain number of bytes): a unit without
`i` is a power of 1000 (as `docker system df` prints sizes), one with `i` (`KiB`, `MiB`...) of 1024.
Durations take Go's forms (`1h`, `90m`, `30s`, `1h30m`) or seconds.
"""
from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DEFAULT_RETENTION = 3600.0
# removed-logs-inspect's default: inspect answers for containers `run --rm` removed, asked for by ID.
AUTO_REMOVED: Final = "auto-removed"


def parse_size(value: object) -> int:
    """Bytes from an int or a size string; ValueError names what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value} is not a positive number of bytes")
        return value
    m = _SIZE.match(str(value)) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{value!r} is not a size (use e.g. 10GB, 512MiB or a number of bytes)")
    number, unit, binary = float(m.group(1)), m.group(2).lower(), m.group(3)
    base = 1024 if binary else 1000
    size = int(number * base ** " kmgtp".index(unit or " "))
    if size <= 0:
        raise ValueError(f"{value!r} is not a positive size")
    return size


def parse_duration(value: object) -> float:
    """Seconds from a number or a Go duration; 0 turns the feature off."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{value!r} is not a duration (use e.g. 1h, 30m, 90s or a number of seconds)")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"{value!r} is not a duration")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


class StorageBudget(BaseModel):
    """`"storage-budget": {"limit": "10GB", "high": 0.9, "low": 0.7}`: above high × limit, collect to low × limit."""

    model_config = ConfigDict(extra="forbid")

    limit: int
    high: float = 0.9
    low: float = 0.7
    # How often usage is checked when nothing announced a change (containers writing into their layers).
    interval: float = Field(default=60.0)

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: object) -> int:
        return parse_size(value)

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: object) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be a positive duration")
        return seconds

    @field_validator("high", "low")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError(f"{value} is not a fraction of the limit (0 < value <= 1)")
        return value

    @model_validator(mode="after")
    def _order(self) -> StorageBudget:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    @property
    def high_bytes(self) -> int:
        return int(self.limit * self.high)

    @property
    def low_bytes(self) -> int:
        return int(self.limit * self.low)
