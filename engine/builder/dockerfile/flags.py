"""Instruction flags (`--name=value`) checked against what each instruction takes, in dockerd's words.

Each instruction declares its flags (bool, string, or strings that may repeat); anything else is
"Unknown flag: NAME". Flags this builder recognises but does not carry out are refused by name
(REFUSED), never accepted and ignored. Durations are Go's `time.ParseDuration` syntax.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum

from engine.builder.dockerfile.errors import DockerfileError


class Kind(Enum):
    BOOL = "bool"
    STRING = "string"
    STRINGS = "strings"


FLAGS: dict[str, dict[str, Kind]] = {
    "FROM": {"platform": Kind.STRING},
    "RUN": {"mount": Kind.STRINGS, "network": Kind.STRING, "security": Kind.STRING},
    "COPY": {"from": Kind.STRING, "chown": Kind.STRING, "chmod": Kind.STRING, "link": Kind.BOOL,
             "parents": Kind.BOOL, "exclude": Kind.STRINGS},
    "ADD": {"chown": Kind.STRING, "chmod": Kind.STRING, "link": Kind.BOOL, "checksum": Kind.STRING,
            "keep-git-dir": Kind.BOOL, "exclude": Kind.STRINGS},
    "HEALTHCHECK": {"interval": Kind.STRING, "timeout": Kind.STRING, "start-period": Kind.STRING,
                    "start-interval": Kind.STRING, "retries": Kind.STRING},
}

REFUSED: dict[tuple[str, str], str] = {
    ("COPY", "parents"): "COPY --parents is not supported by this builder",
    ("COPY", "exclude"): "COPY --exclude is not supported by this builder",
    ("ADD", "exclude"): "ADD --exclude is not supported by this builder",
    ("ADD", "keep-git-dir"): "ADD --keep-git-dir is not supported by this builder (no git sources)",
}


@dataclass
class Flags:
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)

    def string(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def boolean(self, name: str) -> bool:
        return self.values.get(name) == "true"

    def strings(self, name: str) -> list[str]:
        return self.lists.get(name, [])


def parse_flags(keyword: str, raw: tuple[str, ...], line: int) -> Flags:
    known = FLAGS.get(keyword, {})
    out = Flags()
    for arg in raw:
        if not arg.startswith("--"):
            raise DockerfileError(f"Arg should start with -- : {arg}", line)
        if arg == "--":
            break
        name, has_value, value = arg[2:].partition("=")
        kind = known.get(name)
        if kind is None:
            raise DockerfileError(f"Unknown flag: {name}", line)
        if (keyword, name) in REFUSED and not (kind is Kind.BOOL and value.lower() == "false"):
            raise DockerfileError(REFUSED[(keyword, name)], line)
        if kind is not Kind.STRINGS and name in out.values:
            raise DockerfileError(f"Duplicate flag specified: {name}", line)
        if kind is Kind.BOOL:
            if has_value and not value:
                raise DockerfileError(f"Missing a value on flag: {name}", line)
            lowered = value.lower() or "true"
            if lowered not in ("true", "false"):
                raise DockerfileError(f"Expecting boolean value for flag {name}, not: {value}", line)
            out.values[name] = lowered
        elif not has_value:
            raise DockerfileError(f"Missing a value on flag: {name}", line)
        elif kind is Kind.STRING:
            out.values[name] = value
        else:
            out.lists.setdefault(name, []).append(value)
    return out


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Nanoseconds of a Go duration ("1m30s", "1.5h", "0"); Go's error otherwise."""
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    if body == "0":
        return 0
    pos, total = 0, 0.0
    while pos < len(body):
        match = _PART.match(body, pos)
        if not match:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(f"time: invalid duration {json.dumps(text)}")
    return sign * int(round(total))


def health_duration(flags: Flags, name: str, line: int) -> int:
    """A HEALTHCHECK interval in ns: 0 when not given; otherwise at least 1 ms, as dockerd checks."""
    text = flags.string(name)
    if not text:
        return 0
    try:
        value = parse_duration(text)
    except ValueError as err:
        raise DockerfileError(str(err), line) from None
    if value != 0 and value < 1_000_000:
        raise DockerfileError(f"Interval {json.dumps(name)} cannot be less than 1ms", line)
    return value
