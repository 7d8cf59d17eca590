"""The h and w of the container and exec resize endpoints: a size the runtime would refuse is a 400 at once."""
from __future__ import annotations

import pytest

from engine.api.resize import terminal_size
from engine.errors import InvalidArgument


def test_a_terminal_size_is_two_numbers_the_runtime_takes() -> None:
    assert terminal_size({"h": "24", "w": "80"}) == (24, 80)
    assert terminal_size({"h": "65535", "w": "1"}) == (65535, 1)
    assert terminal_size({"h": "0", "w": "0"}) == (0, 0)  # the kernel takes it; dockerd answers 200


@pytest.mark.parametrize(("h", "w"), [("-1", "-1"), ("-1", "80"), ("24", "65536"), ("65536", "0")])
def test_sizes_the_runtime_refuses_are_refused_before_they_are_kept(h: str, w: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^invalid terminal size {h}x{w}$"):
        terminal_size({"h": h, "w": w})
