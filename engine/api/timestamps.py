"""Time arguments as dockerd reads them (`since`/`until` of /events, logs, prune filters).

dockerd accepts Unix seconds with an optional fraction, a Go duration counted back from now ("10m",
"1h30m"), or an RFC 3339 date or date-time (local time when it names no zone).
"""
from __future__ import annotations

import re
from datetime import datetime

_UNIX = re.compile(r"([+-]?\d+)(?:\.(\d+))?")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60 * 1_000_000_000,
            "h": 3600 * 1_000_000_000}


def duration_ns(text: str) -> int | None:
    """A Go duration ("1h30m", "2.5s", "-10m") in nanoseconds, or None if `text` is not one."""
    sign = -1 if text[:1] == "-" else 1
    if text[:1] in ("+", "-"):
        text = text[1:]
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            return None
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return sign * int(total) if text else None


def timestamp_ns(raw: str, now_ns: int) -> int:
    """`raw` as nanoseconds since the epoch; ValueError says what it accepts."""
    text = raw.strip()
    m = _UNIX.fullmatch(text)
    if m is not None:
        return int(m.group(1)) * 1_000_000_000 + int((m.group(2) or "")[:9].ljust(9, "0"))
    ago = duration_ns(text)
    if ago is not None:
        return now_ns - ago
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{raw!r} is neither a Unix timestamp, a duration nor an RFC 3339 date") from None
    # No zone given: local time, as dockerd reads it.
    return int(when.timestamp() * 1_000_000) * 1000
