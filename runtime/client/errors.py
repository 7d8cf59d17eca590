"""Map the runtime API's error bodies back to the runtime's typed errors."""
from __future__ import annotations

from runtime.errors import (
    BY_CODE,
    Internal,
    InvalidArgument,
    NotFound,
    RuntimeError_,
    Unavailable,
)

_BY_STATUS: dict[int, type[RuntimeError_]] = {400: InvalidArgument, 404: NotFound, 503: Unavailable}


def from_body(status: int, body: object) -> RuntimeError_:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        cls = BY_CODE.get(str(err.get("code")), Internal)
        return cls(str(err.get("message", "")))
    return _BY_STATUS.get(status, Internal)(f"runtime API answered {status}: {body!r}"[:500])
