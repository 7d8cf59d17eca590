"""Docker's rules for stdin: a container's across attaches, and the keys that detach a client.

dockerd holds an OpenStdin container's stdin itself: clients come and go (a detach, a
closed connection) and it stays open. Only a StdinOnce container without a terminal
(`docker run -i`) closes it, when the stdin of the attached client ends, so that the
process reads EOF. With a terminal, a client's end only ends that client's attach.
"""
from __future__ import annotations

from typing import Any

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q

# Docker's names for control keys (moby/term): ctrl-@ is 0, ctrl-a..ctrl-z are 1..26, then 27..31.
_CTRL_NAMES = {f"ctrl-{c}": i for i, c in enumerate("@abcdefghijklmnopqrstuvwxyz[\\]^_")}


def closes_stdin_after_attach(config: dict[str, Any]) -> bool:
    return bool(config.get("OpenStdin")) and bool(config.get("StdinOnce")) and not config.get("Tty")


def keeps_stdin_open(config: dict[str, Any]) -> bool:
    """Whether the process's stdin outlives every attached client (only its exit ends it)."""
    return bool(config.get("OpenStdin")) and not closes_stdin_after_attach(config)


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's detach-key syntax: comma-separated single characters, `ctrl-<x>` or `DEL`.

    Case-sensitive and without spaces, as dockerd reads it; ValueError names the bad key.
    """
    if not spec:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in spec.split(","):
        raw = key.encode()
        if len(raw) == 1:
            out += raw
        elif key in _CTRL_NAMES:
            out.append(_CTRL_NAMES[key])
        elif key == "DEL":
            out.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)
