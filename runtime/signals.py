"""Signals by name or number, as Docker accepts them: the one parser for the runtime, the engine and pyctr.

"KILL", "SIGKILL", "kill", "9" and 9 all name SIGKILL; any number from 1 to 64 (the real-time ones
included) is taken as is, and so are the real-time names Docker knows, "RTMIN+3" and "SIGRTMAX-1" (from
RTMIN to RTMIN+15 and from RTMAX-14 to RTMAX, as in moby's signal table). Anything else is InvalidArgument with dockerd's own message, "Invalid signal:
<value>", so a bad signal reads the same whether it was refused by the engine, by the runtime's API or by
pyctr. Pure (the standard library and the runtime's error set only), so the runtime's tasks router uses it
directly and its clients through the re-export in runtime/client/signals.py.
"""
from __future__ import annotations

import signal

from runtime.errors import InvalidArgument

# Linux's signal numbers run from 1 to 64 (SIGRTMAX).
MAX_SIGNAL = 64
# glibc keeps the first two real-time signals for itself: SIGRTMIN is 34 to programs.
_RTMIN = 34
_REALTIME = {**{f"RTMIN+{n}": _RTMIN + n for n in range(1, 16)},
             **{f"RTMAX-{n}": MAX_SIGNAL - n for n in range(1, 15)}}


def parse_signal(value: str | int) -> int:
    """The signal number `value` names; InvalidArgument("Invalid signal: <value>") otherwise."""
    text = str(value).strip()
    # Not bare isdigit(): it is true for "²", which int() refuses.
    if text.isascii() and text.isdigit():
        number = int(text)
    else:
        name = text.upper().removeprefix("SIG")
        member = signal.Signals.__members__.get("SIG" + name)
        number = int(member) if member is not None else _REALTIME.get(name, 0)
    if not 0 < number <= MAX_SIGNAL:
        raise InvalidArgument(f"Invalid signal: {value}")
    return number
