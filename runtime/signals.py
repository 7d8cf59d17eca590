"""Signals by name or number, as Docker accepts them: the one parser for the runtime, the engine and pyctr.

"KILL", "SIGKILL", "kill", "9" and 9 all name SIGKILL; any number from 1 to 64 (the real-time ones
included) is taken as is. Anything else is InvalidArgument with dockerd's own message, "Invalid signal:
<value>", so a bad signal reads the same whether it was refused by the engine, by the runtime's API or by
pyctr. Pure (the standard library and the runtime's error set only), so the runtime's tasks router uses it
directly and its clients through the re-export in runtime/client/signals.py.
"""
from __future__ import annotations

import signal

from runtime.errors import InvalidArgument

# Linux's signal numbers run from 1 to 64 (SIGRTMAX).
MAX_SIGNAL = 64


def parse_signal(value: str | int) -> int:
    """The signal number `value` names; InvalidArgument("Invalid signal: <value>") otherwise."""
    text = str(value).strip()
    # Not bare isdigit(): it is true for "²", which int() refuses.
    if text.isascii() and text.isdigit():
        number = int(text)
    else:
        name = text.upper()
        member = signal.Signals.__members__.get(name if name.startswith("SIG") else "SIG" + name)
        number = 0 if member is None else int(member)
    if not 0 < number <= MAX_SIGNAL:
        raise InvalidArgument(f"Invalid signal: {value}")
    return number
