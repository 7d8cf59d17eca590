"""How the runtime's event loop waits for children and runs blocking work.

Every container start spawns conmon and runc. asyncio's default child watcher in 3.11 starts a thread
per child to wait for it; a pidfd per child on the loop's selector does the same with no thread. And
blocking work (mounts, file writes, SQLite) goes to a pool sized for many concurrent container
operations rather than the default of cores + 4, which queued ten concurrent pod starts behind each other.
"""
from __future__ import annotations

import asyncio
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

BLOCKING_WORKERS = 32


def _pidfd_supported() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def configure(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_default_executor(ThreadPoolExecutor(max_workers=BLOCKING_WORKERS, thread_name_prefix="blocking"))
    if _pidfd_supported():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            watcher = asyncio.PidfdChildWatcher()
            watcher.attach_loop(loop)
            asyncio.set_child_watcher(watcher)
