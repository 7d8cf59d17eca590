"""Output the docker CLI's way: --format templates, aligned tables, human sizes, durations and times."""
from __future__ import annotations

import datetime
import json
import re
import time
from typing import Any, Callable

from cli.common.units import human_duration
from cli.pyengine.api import CLIError
from cli.pyengine.gotemplate_funcs import NO_VALUE, Record

class Template:
    """A `--format` as the docker CLI reads it: Go's text/template, with docker's `table` prefix (a header
    row of column names, cells aligned by a tabwriter), `json` alone meaning `{{json .}}`, and `\\t`/`\\n`
    unescaped (shells rarely pass a real tab). `missing="error"` is docker inspect's missingkey=error."""

    def __init__(self, spec: str, missing: str = "default", verbatim: bool = False) -> None:
        # docker inspect parses its --format as given (`verbatim`): no table, no trimming, no unescaping.
        self.table = spec.startswith("table") and not verbatim
        if self.table:
            spec = spec[len("table"):]
        elif spec == "json":
            spec = "{{json .}}"
        self.spec = spec if verbatim else spec.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        self.missing = missing
        # The parser and executor are imported by the commands given a template only (their import, the
        # lexer's regular expression above all, is a fifth of the CLI's start-up).
        from cli.pyengine.gotemplate import TemplateError, parse
        from cli.pyengine.gotemplate_exec import check_functions

        try:
            self.parsed = parse(self.spec)
            check_functions(self.parsed)
        except TemplateError as e:
            raise CLIError(f"template parsing error: {e}") from None

    def render(self, data: Any) -> str:
        from cli.pyengine.gotemplate import TemplateError
        from cli.pyengine.gotemplate_exec import Executor
        from cli.pyengine.gotemplate_funcs import FUNCTIONS, JSON_FUNCTIONS

        functions = JSON_FUNCTIONS if self.missing == "error" else FUNCTIONS
        try:
            return Executor(self.parsed, functions, missing=self.missing).run(data)
        except TemplateError as e:
            raise CLIError(f"template parsing error: {e}") from None

    def render_inspected(self, obj: Any) -> str:
        """docker inspect's way: over the result as its Go struct (see `gotypes`), and if that fails over the
        raw JSON with missingkey=error, whose failure is the one reported."""
        from cli.pyengine.gotemplate import TemplateError
        from cli.pyengine.gotemplate_exec import Executor
        from cli.pyengine.gotemplate_funcs import Failure
        from cli.pyengine.gotypes import typed

        try:
            return Executor(self.parsed).run(typed(obj))
        except (TemplateError, Failure):
            return self.render(obj)

    def lines(self, rows: list[Any], headers: dict[str, str]) -> str:
        """Every row rendered, a line each; as a table, under a header of the fields' column names."""
        body = "".join(self.render(r) + "\n" for r in rows)
        if not self.table:
            return body
        from cli.pyengine.gotemplate import TemplateError
        from cli.pyengine.gotemplate_exec import Executor
        from cli.pyengine.gotemplate_funcs import HEADER_FUNCTIONS

        executor = Executor(self.parsed, HEADER_FUNCTIONS)
        try:
            executor.run(HeaderRecord(headers))
        except TemplateError:
            pass  # as docker: the header is what rendered before the failure
        return tabulate("".join(executor.out) + "\n" + body)


class HeaderRecord(Record):
    """The header row's data: each field's column name (a Go map: an unknown field is <no value>), and
    `.Label "com.example.some-label"` headed "some label"."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("formatter.SubHeaderContext", dict(headers),
                         {"Label": lambda name: re.sub(r"[-_]", " ", str(name).rsplit(".", 1)[-1])})

    def get(self, name: str, args: list[Any]) -> Any:
        if name in self.methods or args:
            return super().get(name, args)
        return self.fields.get(name, NO_VALUE)


def tabulate(text: str, min_width: int = 10, padding: int = 3) -> str:
    """Go's tabwriter (minwidth 10, padding 3, spaces) as docker's tables use it: tab-terminated cells,
    a column's width set by the block of consecutive lines that have that cell; the last cell of a line is
    not part of any column and is not padded."""
    lines = text.split("\n")
    trailing = lines.pop() if lines else ""
    rows = [line.split("\t") for line in lines]
    out: list[str] = []

    def write(first: int, last: int, widths: list[int]) -> None:
        for row in rows[first:last]:
            out.append("".join(cell.ljust(widths[j]) if j < len(widths) else cell for j, cell in enumerate(row)))

    def columns(first: int, last: int, widths: list[int]) -> None:
        column = len(widths)
        this = first
        while this < last:
            if column >= len(rows[this]) - 1:
                this += 1
                continue
            write(first, this, widths)
            first = this
            width = min_width
            while this < last and column < len(rows[this]) - 1:
                width = max(width, len(rows[this][column]) + padding)
                this += 1
            columns(first, this, widths + [width])
            first = this
        write(first, last, widths)

    columns(0, len(rows), [])
    return "".join(line + "\n" for line in out) + trailing


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


def timestamp(value: str, now: Callable[[], float] = time.time, option: str = "") -> str:
    """--since/--until as the daemon wants them (unix seconds with a fraction), from what docker accepts:
    unix seconds, a Go duration before now ("10m", "1h30m") or an RFC 3339 date or time. `option` names the
    option in the error, as docker's logs does."""
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
            named = f'invalid value for "{option}": ' if option else ""
            raise CLIError(f'{named}failed to parse value as time or duration: "{value}"') from None
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


