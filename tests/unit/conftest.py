from __future__ import annotations

from typing import Iterator

import pytest

from runtime import mount
from tests.unit.mounts import mounted_under


@pytest.fixture
def no_leftover_mounts(tmp_path) -> Iterator[None]:
    """Whatever a test mounted under its tmp_path is gone afterwards, and it fails if it had to be."""
    try:
        yield
    finally:
        mount.unmount_all_under(str(tmp_path), detach=True)
    assert mounted_under(str(tmp_path)) == []
