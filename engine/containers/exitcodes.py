"""The exit code Docker gives a process that could not be started, read from the runtime's words.

The engine records it for the container (or exec); the pyengine CLI, which only sees the daemon's
error message, derives `docker run`'s exit code the same way.
"""
from __future__ import annotations


def start_failure_code(message: str, otherwise: int = 128, command: str | None = None) -> int:
    """With `command` (an exec's program), 127 only when the words name it, as dockerd decides: a missing working
    directory is "no such file or directory" too, and dockerd gives that exec the 126 of any other failure."""
    low = message.lower()
    missing = "executable file not found" in low or "no such file or directory" in low
    if missing and (command is None or command.lower() in low):
        return 127
    if "permission denied" in low or "is a directory" in low:
        return 126
    return otherwise
