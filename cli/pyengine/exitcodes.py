"""`docker run`'s exit code when the daemon refuses to start the container.

The CLI sees only the daemon's error message, so, as the docker CLI does (runStartContainerErr in
cli/command/container/run.go), it reads the code from the words: 127 when the command was not
found, 126 when it could not be invoked, 125 for any other failure of `run` itself. The match is
case-sensitive, as docker's is (Go's errno texts are lower-case).
"""
from __future__ import annotations

RUN_FAILED = 125  # docker run's own failures, as opposed to the container's exit code
_NOT_FOUND = ("executable file not found", "no such file or directory", "system cannot find the file specified")
_NOT_INVOKABLE = ("permission denied", "is a directory")


def start_failure_code(daemon_message: str) -> int:
    """The exit code for a failed start, from the daemon's message."""
    if any(words in daemon_message for words in _NOT_FOUND):
        return 127
    if any(words in daemon_message for words in _NOT_INVOKABLE):
        return 126
    return RUN_FAILED
