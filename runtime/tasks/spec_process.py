"""The process of a container's spec: command, environment, rlimits and oom_score_adj.

The process arrives finished, as containerd takes it: the caller has already made whatever
merge with an image config it wants (Docker's Entrypoint/Cmd/Env rules live in the engine,
ctr's in runtime/client/imageconfig.py). What is added here is the runtime's own floor under
the environment (PATH, HOSTNAME, TERM with a terminal, HOME), which runc-level tools give too,
and the checks that turn host limits runc would only trip over at start (an rlimit above our
hard limit, a lowered oom_score_adj) into InvalidArgument at create.
"""
from __future__ import annotations

import functools
import resource
from typing import Any

from runtime.errors import InvalidArgument
from runtime.tasks.spec_options import SpecOptions, Ulimit

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_NOFILE = 1048576
_RLIM_INFINITY_OCI = 2**64 - 1

# Linux resource numbers (Python's resource module lacks RLIMIT_LOCKS).
_RLIMITS: dict[str, int] = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7, "memlock": 8,
    "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15,
}


def command(opts: SpecOptions) -> list[str]:
    """The process's argv as given: there is no image default to fall back on.

    An empty program name is the caller's to ask for (Docker accepts `Cmd: [""]` at create): runc
    refuses it when the task is created, with the lookup error a user recognises.
    """
    if not opts.args:
        raise InvalidArgument("no command specified")
    if any("\0" in arg for arg in opts.args):
        raise InvalidArgument(f"invalid command {opts.args!r}: an argument cannot contain a NUL byte")
    return list(opts.args)


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    """Later values replace earlier ones by key, keeping first positions; a bare KEY unsets."""
    out: dict[str, str | None] = {}
    for item in base:
        key, _, _ = item.partition("=")
        out[key] = item
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not key or "\0" in item:
            raise InvalidArgument(f"invalid environment variable: {item}")
        if sep:
            out[key] = item
        else:
            out.pop(key, None)
    return [v for v in out.values() if v is not None]


def environment(opts: SpecOptions, hostname: str, home: str) -> list[str]:
    """The runtime's defaults with the given env over them; HOME from the user's passwd entry if still unset."""
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if opts.tty:
        base.append("TERM=xterm")
    env = merge_env(base, opts.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    return env


def _host_hard_limit(number: int) -> int:
    hard = resource.getrlimit(number)[1]
    return _RLIM_INFINITY_OCI if hard == resource.RLIM_INFINITY else hard


_CAP_SYS_RESOURCE = 24


@functools.cache
def can_override_limits() -> bool:
    """Whether this runtime holds CAP_SYS_RESOURCE: runc (its child) may then raise hard limits above our own
    and lower an oom_score_adj below ours, as dockerd's containers get on a usual root host."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_SYS_RESOURCE & 1)
    return False


def _rlimit_value(value: int, name: str) -> int:
    if value == -1:
        return _RLIM_INFINITY_OCI
    if value < 0:
        raise InvalidArgument(f"invalid ulimit {name}: negative value {value}")
    return value


def rlimits(ulimits: list[Ulimit]) -> list[dict[str, Any]]:
    """Explicit ulimits, checked against our hard limits, plus Docker's NOFILE default.

    Raising a hard limit needs CAP_SYS_RESOURCE: without it (some hosts' bounding sets lack it) a
    request above our own hard limit is refused here rather than failing inside runc, and the
    default is lowered to fit.
    """
    out: dict[str, dict[str, Any]] = {}
    for u in ulimits:
        short = u.name.strip().lower().removeprefix("rlimit_")
        if short not in _RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {u.name}")
        key = "RLIMIT_" + short.upper()
        if key in out:
            raise InvalidArgument(f"ulimit {short} given twice")
        soft, hard = _rlimit_value(u.soft, short), _rlimit_value(u.hard, short)
        if soft > hard:
            raise InvalidArgument(f"ulimit {short}: soft limit {u.soft} is greater than hard limit {u.hard}")
        host_hard = _host_hard_limit(_RLIMITS[short])
        if hard > host_hard and not can_override_limits():
            raise InvalidArgument(
                f"ulimit {short}: hard limit {u.hard} is above the host's hard limit {host_hard}")
        out[key] = {"type": key, "hard": hard, "soft": soft}
    if "RLIMIT_NOFILE" not in out:
        nofile = min(DEFAULT_NOFILE, _host_hard_limit(_RLIMITS["nofile"]))
        out["RLIMIT_NOFILE"] = {"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}
    return list(out.values())


def oom_score_adj(value: int | None) -> int | None:
    """The score to write, as dockerd writes one for every container (0 unless asked); None to inherit ours,
    where the score asked for is 0 and writing it would lower ours, which only CAP_SYS_RESOURCE may do."""
    value = value or 0
    if not -1000 <= value <= 1000:
        raise InvalidArgument(f"Invalid value {value}, range for oom score adj is [-1000, 1000]")
    if can_override_limits():
        return value
    with open("/proc/self/oom_score_adj", encoding="ascii") as fh:
        current = int(fh.read())
    if value >= current:
        return value
    if value == 0:
        return None
    raise InvalidArgument(f"oom_score_adj {value} is below the runtime's own {current}: lowering it needs "
                          "CAP_SYS_RESOURCE, which this runtime does not have")
