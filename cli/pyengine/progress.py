"""`pyengine pull` output from the daemon's streamed progress: a bar per layer on a terminal, status lines otherwise."""
from __future__ import annotations

from typing import Any, TextIO

from cli.common.units import human_size
from cli.pyengine.api import CLIError

_DONE = {"Download complete", "Pull complete", "Already exists"}


def check(message: dict[str, Any]) -> None:
    """A failure once the stream has started comes as a message."""
    if "errorDetail" in message or "error" in message:
        raise CLIError((message.get("errorDetail") or {}).get("message") or message.get("error") or "pull failed")


class PullProgress:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, float] = {}
        self._last: dict[str, str] = {}
        if out.isatty():
            # rich costs tens of milliseconds to import: only bars on a terminal pay for it.
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self._bars = Progress(TextColumn("{task.fields[layer]}: {task.description:<18}"), BarColumn(),
                                  TextColumn("{task.fields[size]}"), console=Console(file=out))
            self._bars.start()

    def show(self, message: dict[str, Any]) -> None:
        check(message)
        layer, status = message.get("id"), message.get("status", "")
        if not layer or status.startswith("Pulling from"):
            self._line(f"{layer}: {status}" if layer else status)
        elif self._bars is None:
            # Download and extract progress repeats its status many times: print each change once.
            if self._last.get(layer) != status:
                self._last[layer] = status
                self._line(f"{layer}: {status}")
        else:
            self._bar(layer, status, message.get("progressDetail") or {})

    def _bar(self, layer: str, status: str, detail: dict[str, Any]) -> None:
        task = self._tasks.get(layer)
        if task is None:
            task = self._tasks[layer] = self._bars.add_task(status, total=None, layer=layer, size="")
        total, current = detail.get("total"), detail.get("current") or 0
        if total:
            self._totals[layer] = total
            self._bars.update(task, description=status, total=total, completed=current,
                              size=f"{human_size(current)}/{human_size(total)}")
        elif status in _DONE:
            total = self._totals.get(layer, 1)
            self._bars.update(task, description=status, total=total, completed=total, size="")
        else:
            self._bars.update(task, description=status)

    def _line(self, text: str) -> None:
        if self._bars is not None:
            self._bars.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self._out, flush=True)

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
