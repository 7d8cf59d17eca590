"""The mode of a `-v SRC:DST:MODE` (and of `--volumes-from C:MODE`), read as dockerd reads it.

A mode is comma-separated words, at most one of each kind: read-write (`rw`, `ro`, and dockerd 25's
`rro`, `ro-non-recursive`, `ro-force-recursive`), SELinux label (`z`, `Z`: nothing to relabel on a host
without SELinux, as dockerd does there), propagation, copy (`nocopy`, volumes only) and consistency
(`consistent`, `cached`, `delegated`: macOS only, ignored by dockerd on Linux). Any other word is
dockerd's `invalid mode`: a misspelt `ro` must never leave a mount writable.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidArgument

PROPAGATIONS = frozenset({"private", "rprivate", "shared", "rshared", "slave", "rslave"})
_KINDS: dict[str, frozenset[str]] = {
    "rw": frozenset({"rw", "ro", "rro", "ro-non-recursive", "ro-force-recursive"}),
    "label": frozenset({"z", "Z"}),
    "propagation": PROPAGATIONS,
    "copy": frozenset({"nocopy"}),
    "consistency": frozenset({"consistent", "cached", "delegated"}),
}


@dataclass(frozen=True)
class BindMode:
    read_only: bool
    # How far down read-only goes: "" (the daemon's default), "top" (ro-non-recursive), "all" (rro).
    depth: str
    propagation: str | None
    nocopy: bool


def parse(mode: str) -> BindMode:
    """`mode` as dockerd's linuxValidMountMode and ReadWrite read it; InvalidArgument when it is not one."""
    words = mode.split(",") if mode else []
    seen: dict[str, str] = {}
    for word in words:
        kind = next((k for k, known in _KINDS.items() if word in known), None)
        if kind is None or kind in seen:
            raise InvalidArgument(f"invalid mode: {mode}")
        seen[kind] = word
    rw = seen.get("rw", "rw")
    depth = {"rro": "all", "ro-force-recursive": "all", "ro-non-recursive": "top"}.get(rw, "")
    return BindMode(read_only=rw != "rw", depth=depth, propagation=seen.get("propagation"),
                    nocopy="copy" in seen)


def is_read_only(mode: str) -> bool:
    """Whether a stored mode (checked when it was given) makes its mount read-only."""
    return any(word == "ro" or word == "rro" or word.startswith("ro-") for word in mode.split(","))


def depth_of(mode: str) -> str:
    """A stored mode's read-only depth, as BindMode.depth."""
    words = mode.split(",")
    return "all" if "rro" in words or "ro-force-recursive" in words else "top" if "ro-non-recursive" in words else ""
