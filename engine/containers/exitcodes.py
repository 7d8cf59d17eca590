"""The exit code Docker gives a process that could not be started, read from the runtime's words.

The engine records it for the container (or exec); the pyengine CLI, which only sees the daemon's
error message, derives `docker run`'s exit code the same way.
"""
from __future__ import annotations


def start_failure_code(message: str, otherwise: int = 128) -> int:
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    if "permission denied" in low or "is a directory" in low:
        return 126
    return otherwise
