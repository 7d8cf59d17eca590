"""Volume subpath pins (engine/containers/subpaths.py): resolved beneath the volume, bound through the open
descriptor, and never deleted through."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from engine.containers.subpaths import Subpaths
from engine.errors import InvalidArgument, NotFound

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "volume"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f").write_text("in-a")
    (root / "a" / "out").symlink_to("/")
    (root / "a" / "up").symlink_to("../..")
    return root


def test_a_pin_shows_the_part_and_forgetting_it_keeps_the_volume(tmp_path: Path, volume: Path) -> None:
    pins = Subpaths(tmp_path / "pins")
    node = Path(pins.spec_source("c", 0))
    file_node = Path(pins.spec_source("c", 1))
    asyncio.run(pins.pin("c", 0, str(volume), "a"))
    asyncio.run(pins.pin("c", 1, str(volume), "a/f"))
    assert sorted(os.listdir(node)) == ["b", "f", "out", "up"] and file_node.read_text() == "in-a"
    asyncio.run(pins.pin("c", 0, str(volume), "a/b"))  # a new start: the old pin goes first
    assert os.listdir(node) == []
    asyncio.run(pins.forget("c"))
    assert sorted(os.listdir(volume / "a")) == ["b", "f", "out", "up"] and not (tmp_path / "pins" / "c").exists()
    # After a reboot the exec root is empty: a start makes the node again.
    asyncio.run(pins.pin("c", 0, str(volume), "a"))
    assert sorted(os.listdir(node)) == ["b", "f", "out", "up"]
    asyncio.run(pins.forget("c"))


@pytest.mark.parametrize("subpath, error", [("a/out", InvalidArgument), ("a/up", InvalidArgument),
                                            ("a/out/etc", InvalidArgument), ("nosuch", NotFound)])
def test_a_subpath_never_leads_out_of_the_volume(tmp_path: Path, volume: Path, subpath: str,
                                                 error: type[Exception]) -> None:
    pins = Subpaths(tmp_path / "pins")
    pins.spec_source("c", 0)
    with pytest.raises(error):
        asyncio.run(pins.pin("c", 0, str(volume), subpath))
    asyncio.run(pins.forget("c"))
