"""`pyctr events --since`: when the replay of recorded events starts."""
from __future__ import annotations

import argparse
import re
import time

_AGO = re.compile(r"(\d+)(s|m|h)")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def since(text: str) -> float:
    """Unix seconds, or a duration back from now ("10m", "1h30m"), as `docker events --since` takes them."""
    try:
        return float(text)
    except ValueError:
        pass
    parts = _AGO.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is neither Unix seconds nor a duration like 10m")
    return time.time() - sum(int(n) * _SECONDS[u] for n, u in parts)
