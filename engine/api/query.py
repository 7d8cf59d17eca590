"""Query-string conventions of the Docker API clients (CLIENT-FLOWS §1.7-1.9)."""
from __future__ import annotations

import re
from typing import Any, Mapping

from engine.api.gojson import decode
from engine.errors import InvalidArgument

_FALSE = {"", "0", "no", "false", "none"}
# strconv.Atoi's syntax: ASCII digits after an optional sign, no spaces or underscores as int() allows.
_ATOI = re.compile(r"[+-]?[0-9]+")
_INT64 = range(-(1 << 63), 1 << 63)


def boolean(q: Mapping[str, str], name: str, default: bool = False) -> bool:
    if name not in q:
        return default
    return q[name].strip().lower() not in _FALSE


def integer(q: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    if not _ATOI.fullmatch(raw):
        raise InvalidArgument(f"invalid value for {name}: {raw!r} is not an integer")
    # Measured before int(), which refuses more than 4300 digits (leading zeros too): int64 has 19 at most.
    digits = raw.lstrip("+-").lstrip("0") or "0"
    value = (-1 if raw[0] == "-" else 1) * int(digits) if len(digits) <= 19 else None
    if value is None or value not in _INT64:
        raise InvalidArgument(f"invalid value for {name}: {raw!r} is out of range")
    return value


def filters(q: Mapping[str, str]) -> dict[str, list[str]]:
    """Both shapes: {"label":{"a=b":true}} (CLI) and {"label":["a=b"]} (docker-py)."""
    raw = q.get("filters")
    if not raw:
        return {}
    try:
        doc: Any = decode(raw.encode(errors="replace"))
    except InvalidArgument:
        raise InvalidArgument(f"invalid filter: {raw!r} is not JSON") from None
    if doc is None:
        return {}  # Go decodes `null` into an empty filter set
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        elif isinstance(value, str):
            out[key] = [value]
        else:
            raise InvalidArgument(f"invalid filter value for {key!r}")
    return out


def pattern_matches(pattern: str, value: str) -> bool:
    """A `name` filter value as dockerd reads it: a regular expression (`^web$`); one that does not compile as text."""
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return pattern in value
