"""/.dockerenv: the empty file dockerd puts at the root of every container, which tools look for to tell that
they run in one.

Here it is one empty file under --data-root, bound read-only into each container: the runtime leaves a spec's
mount points out of diffs and commits, so the file is in no layer, as dockerd keeps it in an init layer of
its own below the container's.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DESTINATION = "/.dockerenv"


def ensure(data_root: Path) -> Path:
    """The file to bind (made once; dockerd's is empty and 0755)."""
    path = data_root / "dockerenv"
    if not path.is_file():
        path.touch()
    os.chmod(path, 0o755)
    return path


def mount(source: Path) -> dict[str, Any]:
    return {"type": "bind", "source": str(source), "destination": DESTINATION, "options": ["rbind", "ro"]}
