"""The request's namespace (containerd's meaning), set once at the API edge.

Stores call `require_namespace()` instead of taking a namespace argument, so a
forgotten namespace is a typed error at the first store call, never a leak
across namespaces.
"""
from __future__ import annotations

import re
from contextvars import ContextVar

from runtime.errors import FailedPrecondition, InvalidArgument

# Same shape as containerd's: DNS-label-like components separated by dots.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9_-]{0,62}[A-Za-z0-9])?"
_NAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")

_current: ContextVar[str | None] = ContextVar("pyengine_namespace", default=None)


def validate(name: str) -> str:
    if not isinstance(name, str) or len(name) > 76 or not _NAME_RE.match(name):
        raise InvalidArgument(f"invalid namespace name {name!r}: use letters, digits, '-', '_' and '.'")
    return name


def set_namespace(name: str) -> object:
    return _current.set(validate(name))


def reset_namespace(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def require_namespace() -> str:
    ns = _current.get()
    if ns is None:
        raise FailedPrecondition("no namespace set on the request")
    return ns
