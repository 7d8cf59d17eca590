"""The h and w of POST /containers/{id}/resize and POST /exec/{id}/resize: a TTY's size, both required."""
from __future__ import annotations

from collections.abc import Mapping

from engine.api.query import integer
from engine.errors import InvalidArgument


def terminal_size(q: Mapping[str, str]) -> tuple[int, int]:
    """(height, width)."""
    height, width = integer(q, "h"), integer(q, "w")
    if height is None or width is None:
        raise InvalidArgument("resize needs both h and w")
    # The runtime's bounds, checked here too: an exec's size is kept until its process exists, and one the
    # runtime refuses then would fail the start instead of this request. 0x0 is a size the kernel takes
    # (dockerd answers 200 to it).
    if not (0 <= height < 65536 and 0 <= width < 65536):
        raise InvalidArgument(f"invalid terminal size {height}x{width}")
    return height, width
