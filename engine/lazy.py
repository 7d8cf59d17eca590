"""Services built on their first use, their modules imported then: `Lazy(factory)`, and `.get()` where used.

Most of an idle pyengined's size is the code it has imported, and issue 10 holds the engine and its runtime
to dockerd + containerd's idle RSS. Building, committing and importing images are whole subsystems (the
Dockerfile front end, the build-context reader, the RUN and COPY steps: about 2 MiB of modules) that an
engine serving pulls, runs and execs never reaches. engine/backend.py wires them as `Lazy`, with factories
that import their modules, so the first request that needs one pays for it, once; their routers import
only the light request types (engine/builder/options.py, engine/images/make_options.py).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self._factory()
        return self._value
