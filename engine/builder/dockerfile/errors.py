"""The Dockerfile front end's errors: all are the client's fault, so all are 400s (InvalidArgument)."""
from __future__ import annotations

from engine.errors import InvalidArgument


class DockerfileError(InvalidArgument):
    """A Dockerfile that cannot be built, in dockerd's words ("dockerfile parse error line N: ...")."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.reason = message
        self.line = line
        super().__init__(f"dockerfile parse error line {line}: {message}" if line else message)


class SubstitutionError(InvalidArgument):
    """A variable substitution the shell lexer refuses (`${X:?msg}`, a missing `}`, an open quote)."""
