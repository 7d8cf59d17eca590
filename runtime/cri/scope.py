"""Running CRI work in the CRI namespace: the runtime's stores read the namespace from a context variable."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from runtime.namespaces import reset_namespace, set_namespace


@contextlib.contextmanager
def in_namespace(namespace: str) -> Iterator[None]:
    token = set_namespace(namespace)
    try:
        yield
    finally:
        reset_namespace(token)
