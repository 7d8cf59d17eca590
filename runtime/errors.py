"""The runtime's closed set of typed errors.

Every failure that crosses the runtime API is one of these; the API maps them to
HTTP statuses in exactly one place (runtime/api/errors.py) and the client maps
them back (runtime/client/errors.py), so callers on both sides catch the same types.
"""
from __future__ import annotations


class RuntimeError_(Exception):
    """Base of the runtime's typed errors. `code` is the wire name."""

    code = "unknown"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RuntimeError_):
    code = "not_found"


class AlreadyExists(RuntimeError_):
    code = "already_exists"


class InvalidArgument(RuntimeError_):
    code = "invalid_argument"


class FailedPrecondition(RuntimeError_):
    code = "failed_precondition"


class Conflict(RuntimeError_):
    code = "conflict"


class Unavailable(RuntimeError_):
    code = "unavailable"


class Unauthenticated(RuntimeError_):
    code = "unauthenticated"


class PermissionDenied(RuntimeError_):
    code = "permission_denied"


class DataLoss(RuntimeError_):
    """Content failed verification (size or digest mismatch)."""

    code = "data_loss"


class Internal(RuntimeError_):
    code = "internal"


ALL_ERRORS: tuple[type[RuntimeError_], ...] = (
    NotFound,
    AlreadyExists,
    InvalidArgument,
    FailedPrecondition,
    Conflict,
    Unavailable,
    Unauthenticated,
    PermissionDenied,
    DataLoss,
    Internal,
)

BY_CODE: dict[str, type[RuntimeError_]] = {e.code: e for e in ALL_ERRORS}
