"""Our own terminal, as an interactive session (`pyengine run -it`, `pyctr run -t`) needs it.

Standard library only, and no asyncio: the pyengine CLI imports it at start-up and runs without
the runtime's client.
"""
from __future__ import annotations

import contextlib
import sys
import termios
import tty
from typing import Iterator


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    """Put our terminal in raw mode so keys reach the container's terminal unchanged."""
    if not enabled or not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
