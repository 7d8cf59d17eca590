"""engine/prune_guard.py: a second prune of a kind while one runs is refused in dockerd's words; containers and
networks share one flag, images and volumes have their own; a failed prune frees its kind."""
from __future__ import annotations

import pytest

from engine import prune_guard
from engine.errors import Conflict


def test_one_prune_of_a_kind_at_a_time() -> None:
    guard = prune_guard.PruneGuard()
    with guard.running(prune_guard.CONTAINERS):
        with pytest.raises(Conflict, match="^a prune operation is already running$"):
            with guard.running(prune_guard.NETWORKS):
                pass
        with guard.running(prune_guard.IMAGES), guard.running(prune_guard.VOLUMES):
            pass
    with pytest.raises(ValueError):
        with guard.running(prune_guard.IMAGES):
            raise ValueError("the prune failed")
    with guard.running(prune_guard.IMAGES):
        pass
