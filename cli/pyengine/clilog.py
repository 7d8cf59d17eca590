"""The CLI's own log lines on stderr, as the docker CLI's logger writes them: `DEBU[0000] message` on a
terminal, `time="..." level=debug msg="..."` otherwise. `-D`/`--debug` and `-l`/`--log-level` choose what is
written; the requests the CLI sends are logged at debug. Not the logging package: its import is start-up time
on every command, for the few lines this writes."""
from __future__ import annotations

import json
import sys
import time

# logrus's levels, most severe first; `warning` is `warn`'s other name.
LEVELS = ("panic", "fatal", "error", "warn", "info", "debug", "trace")
_ALIASES = {"warning": "warn"}
_started = time.monotonic()
_level = [LEVELS.index("info")]


def set_level(name: str) -> None:
    """Raises ValueError, in the docker CLI's words, for a level it does not know."""
    level = _ALIASES.get(name.lower(), name.lower())
    if level not in LEVELS:
        raise ValueError(f"Unable to parse logging level: {name}")
    _level[0] = LEVELS.index(level)


def level() -> str:
    return LEVELS[_level[0]]


def debug(message: str) -> None:
    _write("debug", message)


def _write(name: str, message: str) -> None:
    if LEVELS.index(name) > _level[0]:
        return
    if sys.stderr.isatty():
        line = f"{name[:4].upper()}[{int(time.monotonic() - _started):04d}] {message}"
    else:
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        line = f'time="{now[:-2]}:{now[-2:]}" level={name} msg={json.dumps(message)}'
    print(line, file=sys.stderr)
