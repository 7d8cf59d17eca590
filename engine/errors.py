"""The engine's errors, each carrying the Docker status the clients branch on (CLIENT-FLOWS §3)."""
from __future__ import annotations


class EngineError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(EngineError):
    status = 404


class Unauthorized(EngineError):
    """A registry's refusal passed on (401), as dockerd passes on Docker Hub's for a name it does not have."""

    status = 401


class Forbidden(EngineError):
    """What Docker refuses with 403: removing or creating a pre-defined network, and the like."""

    status = 403


class Conflict(EngineError):
    status = 409


class InvalidArgument(EngineError):
    status = 400


class NotModified(EngineError):
    """Start of a running container, stop of a stopped one: success for the CLI."""

    status = 304


class Unavailable(EngineError):
    status = 503


class NotImplemented_(EngineError):
    """A Docker feature this engine does not have (swarm mode, managed plugins): said, never faked."""

    status = 501


class Internal(EngineError):
    status = 500


def prefixed(error: EngineError, prefix: str) -> EngineError:
    """The same error (kind and status) with dockerd's words for what failed in front: "Cannot kill container: x: …"."""
    out = type(error)(prefix + error.message)
    out.__cause__ = error.__cause__
    return out
