"""The engine's record of which image a commit made an image from (engine/images/parents.py)."""
from __future__ import annotations

import asyncio
from pathlib import Path

from engine.images.parents import Parents


def test_parents_are_kept_across_restarts_and_forgotten_with_their_images(tmp_path: Path) -> None:
    async def go() -> None:
        p = Parents(tmp_path / "parents.db")
        await p.record("c1", "base")
        await p.record("c2", "base")
        await p.record("g1", "c1")
        await p.record("base", "base")  # an image is never its own parent
        assert p.parent("c1") == "base" and sorted(p.children("base")) == ["c1", "c2"] and p.parent("base") is None
        await p.forget("c1")
        assert p.children("base") == ["c2"] and p.parent("g1") is None
        again = Parents(tmp_path / "parents.db")
        await asyncio.sleep(0)
        assert again.parent("c2") == "base" and again.parent("c1") is None and again.parent("g1") is None

    asyncio.run(go())
