"""Docker's human wording of sizes and durations (go-units), shared by the engine and the pyengine CLI.

Dependency-free on purpose: the CLI imports it and must start fast.
"""
from __future__ import annotations


def _scaled(n: float, base: int, units: tuple[str, ...], precision: int) -> str:
    for unit in units[:-1]:
        if n < base:
            return f"{n:.{precision}g}{unit}"
        n /= base
    return f"{n:.{precision}g}{units[-1]}"


def human_size(n: float, precision: int = 4) -> str:
    """Decimal units (go-units HumanSize): progress strings use 4 significant digits, `docker images` 3."""
    return _scaled(n, 1000, ("B", "kB", "MB", "GB", "TB", "PB"), precision)


def binary_size(n: float) -> str:
    """Binary units, as `docker info` shows memory."""
    return _scaled(n, 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"), 4)


def human_duration(seconds: float) -> str:
    """Docker's coarse, human wording of a duration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    days = s // 86400
    if days < 14:
        return f"{days} days"
    if days < 7 * 12:
        return f"{days // 7} weeks"
    if days < 365 * 2:
        return f"{days // 30} months"
    return f"{days // 365} years"


def go_duration(ns: int) -> str:
    """Go's time.Duration as dockerd prints one in its messages: 500ms, 1.5s, 1m30s, 1h0m0s."""
    if ns <= 0:
        return "0s"
    if ns < 1_000_000_000:
        unit, size = next((u, n) for u, n in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)) if ns >= n)
        return f"{ns / size:.6f}".rstrip("0").rstrip(".") + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = f"{rest / 1e9:.9f}".rstrip("0").rstrip(".") + "s"
    return f"{hours}h{minutes}m{seconds}" if hours else f"{minutes}m{seconds}" if minutes else seconds
