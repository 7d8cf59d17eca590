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
    return height, width
