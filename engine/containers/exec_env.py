"""An exec's environment as dockerd computes it: its defaults, the links', the container's, then the exec's own.

The runtime takes it whole (it adds HOME for the exec's user when none is named), so variables come in dockerd's
order: `PATH`, `HOSTNAME`, `TERM` with a terminal, the links' variables, `Config.Env`, the exec's `Env`.
"""
from __future__ import annotations

from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def replace_or_append(base: list[str], overrides: list[str]) -> list[str]:
    """Each override replaces the variable of its name where it stands, or comes last; a bare `KEY` removes it."""
    out: dict[str, str] = {}
    for item in base:
        out[item.partition("=")[0]] = item
    for item in overrides:
        key, sep, _ = item.partition("=")
        if sep:
            out[key] = item
        else:
            out.pop(key, None)
    return list(out.values())


def exec_environment(config: dict[str, Any], tty: bool, linked: list[str], given: list[str]) -> list[str]:
    defaults = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={config.get('Hostname') or ''}", *(["TERM=xterm"] if tty else [])]
    return replace_or_append(replace_or_append([*defaults, *linked], list(config.get("Env") or [])), given)
