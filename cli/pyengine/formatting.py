"""Output the docker CLI's way: --format templates, aligned tables, human sizes, durations and times."""
from __future__ import annotations

import datetime
import json
import re
import time
from typing import Any, Callable

from cli.common.units import human_duration
from cli.pyengine.api import CLIError

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
_MISSING = object()


class Template:
    """A small subset of Go's text/template, what `--format` is mostly used with: `{{.Field.Sub}}`,
    `{{json .X}}`, `{{index .Labels "k"}}`, `{{join .Args " "}}`, `{{upper .X}}`, `{{lower .X}}`,
    and docker's `table` prefix, which adds a header row and aligns the columns."""

    def __init__(self, spec: str) -> None:
        self.table = spec.startswith("table")
        if self.table:
            spec = spec[len("table"):].strip()
        # docker unescapes these itself: shells rarely pass a real tab.
        self.spec = spec.replace("\\t", "\t").replace("\\n", "\n")

    def render(self, data: Any) -> str:
        return _ACTION.sub(lambda m: _text(_evaluate(m.group(1), data, self.spec)), self.spec)

    def lines(self, rows: list[Any], headers: dict[str, str]) -> str:
        """Every row rendered; as a table, under a header of the fields' column names."""
        out = [self.render(r) for r in rows]
        if not self.table:
            return "".join(line + "\n" for line in out)
        return tabulate([self.render(_Headers(headers)), *out])


class _Headers(dict):  # type: ignore[type-arg]
    """Header row data: a field without a known column name is headed by its own name in capitals."""

    def __missing__(self, key: str) -> str:
        return key.upper()


def _function(name: str, args: list[Any], spec: str) -> Any:
    if name == "json":
        return json.dumps(args[0] if args else None, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if name == "index" and len(args) == 2:
        container, key = args
        return container.get(key, _MISSING) if isinstance(container, dict) else container[int(key)]
    if name == "join" and len(args) == 2:
        return args[1].join(_text(a) for a in args[0] or [])
    if name in ("upper", "lower") and len(args) == 1:
        return getattr(_text(args[0]), name)()
    raise CLIError(f"template parsing error: {spec!r}: function {name!r} not supported")


def _evaluate(action: str, data: Any, spec: str) -> Any:
    words = _TOKEN.findall(action)
    if not words:
        raise CLIError(f"template parsing error: {spec!r}: empty action")
    args = [_argument(w, data, spec) for w in (words[1:] if not words[0].startswith(".") else words)]
    if words[0].startswith("."):
        if len(args) != 1:
            raise CLIError(f"template parsing error: {spec!r}: {action!r}")
        return args[0]
    return _function(words[0], args, spec)


def _argument(word: str, data: Any, spec: str) -> Any:
    if word.startswith('"'):
        return json.loads(word)
    if not word.startswith("."):
        raise CLIError(f"template parsing error: {spec!r}: unexpected {word!r}")
    value = data
    for part in filter(None, word.split(".")):
        if isinstance(value, dict):
            try:
                value = value[part]
            except KeyError:
                return _MISSING
        elif value is _MISSING:
            return _MISSING
        else:
            raise CLIError(f"template: {spec!r}: can't evaluate field {part} in {_text(value)!r}")
    return value


def _text(value: Any) -> str:
    """Go's %v of a decoded JSON value."""
    if value is _MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def tabulate(lines: list[str], min_width: int = 10, padding: int = 3) -> str:
    """Tab-separated cells aligned as Go's tabwriter aligns docker's tables (the last cell is not padded)."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            width = max(min_width, len(cell) + padding)
            if i == len(widths):
                widths.append(width)
            else:
                widths[i] = max(widths[i], width)
    return "".join("".join(c.ljust(widths[i]) for i, c in enumerate(row[:-1])) + row[-1] + "\n" for row in rows)


def ago(unix: float) -> str:
    return f"{human_duration(time.time() - unix)} ago"


def local_time(unix: float) -> str:
    """Go's time.String() without the monotonic part: "2006-01-02 15:04:05 -0700 MST"."""
    return datetime.datetime.fromtimestamp(unix).astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")


def rfc3339_nano(ns: int) -> str:
    """Local time with a fixed nine-digit fraction, as `docker events` prints it."""
    t = datetime.datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    offset = t.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return f"{t.strftime('%Y-%m-%dT%H:%M:%S')}.{ns % 1_000_000_000:09d}{zone}"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def timestamp(value: str, now: Callable[[], float] = time.time) -> str:
    """--since/--until as the daemon wants them (unix seconds with a fraction), from what docker accepts:
    unix seconds, a Go duration before now ("10m", "1h30m") or an RFC 3339 date or time."""
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d{1,9})?", value):
        return value
    if _DURATION_PART.sub("", value) == "" and value:
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(value))
        unix = now() - seconds
    else:
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise CLIError(f"invalid timestamp {value!r}: use unix seconds, a duration like 10m, or RFC 3339",
                           125) from None
        unix = parsed.timestamp()
    return f"{unix:.9f}"


def filters(items: list[str] | None) -> str | None:
    """Repeated --filter key=value as the daemon's JSON: {"key": {"value": true}}."""
    if not items:
        return None
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"bad format of filter (expected name=value): {item}", 125)
        out.setdefault(key.strip().lower(), {})[value] = True
    return json.dumps(out)


def natural_key(text: str) -> list[Any]:
    """Sorts as docker's sortorder.NaturalLess: runs of digits compare as numbers ("n2" before "n10")."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text))]


def go_time(rfc3339: str) -> str:
    """An API time as Go's time.String() prints it once decoded: "2006-01-02 15:04:05.5 +0000 UTC"."""
    m = re.fullmatch(r"(\S+)T([\d:]+)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if m is None:
        return rfc3339
    day, clock, fraction, zone = m.groups()
    fraction = (fraction or "").rstrip("0")
    offset = "+0000 UTC" if zone == "Z" else f"{zone.replace(':', '')} {zone.replace(':', '')}"
    return f"{day} {clock}{'.' + fraction if fraction else ''} {offset}"
