"""glibc's allocator tuned for a long-lived daemon whose worker threads come and go.

glibc gives each thread that allocates its own arena (up to 8 per CPU); the unpack and hash threads of a
pull each leave one behind, holding freed memory the daemon never gets back. Two arenas keep the event
loop's apart from the workers' without that growth. glibc also returns freed memory to the system only
from the top of an arena, so after an operation that churned through buffers (a pull, an import) the
daemon asks it to give back every free page. Together about 6 MiB of pyruntimed's RSS after one pull.
Elsewhere than glibc both do nothing.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from typing import Any

_M_ARENA_MAX = -8


def _libc_function(name: str) -> Any:
    lib = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(lib), name, None) if lib else None


_mallopt = _libc_function("mallopt")
_malloc_trim = _libc_function("malloc_trim")


def limit_arenas(count: int = 2) -> None:
    """Call before the daemon starts any thread: arenas already made stay."""
    if _mallopt is not None:
        _mallopt(_M_ARENA_MAX, count)


async def release() -> None:
    """Give the free pages of every arena back to the system (a walk of the heap: off the event loop)."""
    if _malloc_trim is not None:
        await asyncio.to_thread(_malloc_trim, 0)
