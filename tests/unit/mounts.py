"""What is mounted below a path, from /proc/mounts (for tests that must leave nothing mounted)."""
from __future__ import annotations

import os


def mounted_under(path: str) -> list[str]:
    path = os.path.realpath(path)
    with open("/proc/mounts") as fh:
        return [line.split()[1] for line in fh if line.split()[1].startswith(path)]
