"""Printing for pyctr: tables, sizes, pull progress."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO



def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for line in [headers] + rows:
        print("    ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{n} B"


def labels(lbls: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(lbls.items())) or "-"


class UsageError(Exception):
    """Bad command-line input: pyctr says so on one line and exits 2."""


def parse_labels(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise UsageError(f"label {item!r} must be KEY=VALUE")
        out[key] = value
    return out


def parse_user(user: str) -> dict[str, str]:
    name, _, password = user.partition(":")
    return {"username": name, "password": password}


class PullRenderer:
    """Per-layer bars on a terminal, one plain line per state change otherwise."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._last: dict[str, str] = {}
        if self._tty:
            # rich costs ~50 ms to import: only bars on a terminal pay for it.
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                      TransferSpeedColumn(), transient=False)
            self._progress.start()

    def update(self, ev: dict[str, Any]) -> None:
        if "digest" not in ev or "kind" not in ev:
            if ev.get("status") == "resolved":
                self._print(f"{ev['name']}: resolved {ev['digest']}")
            return
        short = ev["digest"].split(":")[-1][:12]
        desc = f"{ev['kind']}-{short}: {ev['status']}"
        if self._progress is not None:
            tid = self._tasks.get(ev["digest"])
            if tid is None:
                tid = self._tasks[ev["digest"]] = self._progress.add_task(desc, total=ev["total"] or None)
            self._progress.update(tid, completed=ev["current"], description=desc)
        elif self._last.get(ev["digest"]) != ev["status"]:
            self._last[ev["digest"]] = ev["status"]
            self._print(f"{desc} {ev['current']}/{ev['total']}")

    def _print(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            print(text, file=self._out, flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def lines(items: Iterable[str]) -> None:
    """One item a line (`-q`): nothing at all for none, as ctr prints."""
    for item in items:
        print(item)
