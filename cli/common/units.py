"""Docker's human wording of sizes and durations, as go-units (github.com/docker/go-units) writes them.

The CLI carries its own copy rather than importing the engine's: it is installed and run without the
engine, against any Docker-API daemon, just as the docker CLI vendors go-units apart from dockerd.
"""
from __future__ import annotations

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _scaled(n: float, base: int, units: tuple[str, ...], precision: int) -> str:
    """go-units' getSizeAndUnit, then Go's `%.*g`: divide until below the base or out of units."""
    i = 0
    while n >= base and i < len(units) - 1:
        n /= base
        i += 1
    return f"{n:.{precision}g}{units[i]}"


def human_size(n: float, precision: int = 4) -> str:
    """Decimal units (HumanSizeWithPrecision): progress and `system df` use 4 significant digits, `docker images` 3."""
    return _scaled(n, 1000, _DECIMAL, precision)


def binary_size(n: float) -> str:
    """Binary units (BytesSize), as `docker info` shows memory."""
    return _scaled(n, 1024, _BINARY, 4)


def human_duration(seconds: float) -> str:
    """HumanDuration: coarse on purpose (`docker ps` "Up 2 hours", "3 weeks ago"); hours are rounded."""
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
    hours = int(seconds / 3600 + 0.5)  # Go's Duration.Round: halves away from zero, not to even
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"
