"""Volume create refuses what the local driver cannot store with a 400, leaving nothing behind."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.volumes.service import VolumeService


def _service(tmp_path: Path) -> VolumeService:
    return VolumeService(tmp_path, users=lambda name: [], running=lambda name: [])


async def test_a_name_too_long_for_the_filesystem_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    svc = _service(tmp_path)
    name = "a" * 300
    with pytest.raises(InvalidArgument, match="file name too long"):
        await svc.create(name)
    assert svc.store.find(name) is None and svc.list() == []
    assert _service(tmp_path).list() == []
    assert [p for p in svc.root.iterdir() if p.is_dir()] == []


async def test_a_name_ending_in_a_newline_is_refused(tmp_path: Path) -> None:
    # Go's regexp `$` is the end of the text: "ab\n" is not a valid name there.
    with pytest.raises(InvalidArgument, match="invalid characters"):
        await _service(tmp_path).create("ab\n")


async def test_driver_options_with_a_nul_byte_are_refused(tmp_path: Path) -> None:
    svc = _service(tmp_path)
    with pytest.raises(InvalidArgument, match="invalid option"):
        await svc.create("vv", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m\x00"})
    assert svc.list() == []


async def test_a_long_name_within_the_limit_is_created(tmp_path: Path) -> None:
    svc = _service(tmp_path)
    v = await svc.create("b" * 255)
    assert Path(svc.mountpoint(v.name)).is_dir()
