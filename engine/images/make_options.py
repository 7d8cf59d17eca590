"""What `docker commit` and `docker import` ask for, as their router reads it from the request.

Apart from the services that carry them out (engine.images.commit, engine.images.importer), which load the
Dockerfile front end for `--change`: those are built on the first commit or import (engine/lazy.py), and the
router, which every engine loads, needs only these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CommitOptions:
    repo: str = ""
    tag: str = ""
    author: str = ""
    comment: str = ""
    pause: bool = True
    changes: tuple[str, ...] = ()
    config: dict[str, Any] | None = None  # the request body: Config fields that override the container's


@dataclass(frozen=True)
class ImportOptions:
    source: str  # "-" for the request body, else the URL
    repo: str = ""
    tag: str = ""
    message: str = ""
    changes: tuple[str, ...] = ()
    platform: dict[str, str] | None = None
