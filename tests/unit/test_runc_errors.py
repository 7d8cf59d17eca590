"""runc's error messages as the runtime's typed errors: the caller's bad values are a 400, not a 500."""
from __future__ import annotations

import pytest

from runtime.errors import AlreadyExists, FailedPrecondition, Internal, InvalidArgument, NotFound
from runtime.tasks.runc import error_for


@pytest.mark.parametrize(("message", "kind"), [
    ("exec failed: Cwd must be an absolute path", InvalidArgument),
    ("the maximum allowed cpu-shares is 262144", InvalidArgument),
    ("the minimum allowed cpu-shares is 2", InvalidArgument),
    ("args must not be empty", InvalidArgument),
    ('container "x" does not exist', NotFound),
    ("container with id exists: x already exists", AlreadyExists),
    ("container not running", FailedPrecondition),
    ("unable to freeze: read-only file system", Internal),
])
def test_runc_messages_map_to_kinds(message: str, kind: type[Exception]) -> None:
    err = error_for(message)
    assert type(err) is kind and err.message == message
