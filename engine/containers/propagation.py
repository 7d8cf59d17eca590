"""dockerd's check of a bind's propagation against the host's mounts, at each start.

A bind asking for `shared`/`rshared` needs its source to sit on a shared mount, and `slave`/`rslave` on a
shared or slave one: otherwise the propagation could not work, and dockerd refuses the start ("path X is
mounted on Y but it is not a shared mount"). The mount a source sits on is the deepest mount point above it
in /proc/self/mountinfo (the last one where mounts are stacked: the one a path resolves through), after its
symlinks are resolved; its optional fields say `shared:N` and `master:N`.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.containers.mounts import bind_propagations
from engine.errors import InvalidArgument

MOUNTINFO = "/proc/self/mountinfo"
_NEEDS = {"shared": ("shared:",), "rshared": ("shared:",),
          "slave": ("shared:", "master:"), "rslave": ("shared:", "master:")}


@dataclass(frozen=True)
class MountPoint:
    path: str
    optional: tuple[str, ...]  # e.g. ("shared:1",), ("master:3",), ()


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse(text: str) -> list[MountPoint]:
    out = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 7 or "-" not in fields[6:]:
            continue
        out.append(MountPoint(_unescape(fields[4]), tuple(fields[6:fields.index("-", 6)])))
    return out


def source_mount(path: str, mounts: list[MountPoint]) -> MountPoint | None:
    best: MountPoint | None = None
    for m in mounts:
        if path == m.path or path.startswith(m.path.rstrip("/") + "/"):
            if best is None or len(m.path) >= len(best.path):
                best = m
    return best


def check(binds: list[tuple[str, str]], mounts: list[MountPoint]) -> None:
    """InvalidArgument in dockerd's words for the first bind whose propagation its source's mount cannot give."""
    for source, propagation in binds:
        needs = _NEEDS.get(propagation)
        if needs is None:
            continue
        on = source_mount(os.path.realpath(source), mounts)
        if on is None:
            raise InvalidArgument(f"Can't find mount point of {source}")
        if not any(opt.startswith(needs) for opt in on.optional):
            kind = "shared" if propagation.endswith("shared") else "shared or slave"
            raise InvalidArgument(f"path {os.path.normpath(source)} is mounted on {on.path} but it is not a {kind} "
                                  "mount")


def _read_and_check(binds: list[tuple[str, str]]) -> None:
    with open(MOUNTINFO) as f:
        check(binds, parse(f.read()))


async def check_host(host_config: Mapping[str, Any]) -> None:
    """The check against this host's mounts, for a container's stored HostConfig (no file read if no bind asks)."""
    binds = [b for b in bind_propagations(list(host_config.get("Binds") or []),
                                          list(host_config.get("Mounts") or [])) if b[1] in _NEEDS]
    if binds:
        await asyncio.to_thread(_read_and_check, binds)
