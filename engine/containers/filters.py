"""The `filters` of GET /containers/json (docker ps) and POST /containers/prune.

Pure selection over container records. What a record does not hold (the networks a
container is on, its mounts, its published ports) comes in as functions from the
caller, asked only when a filter needs them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.containers.state import Status
from engine.containers.store import Container
from engine.containers.views import exposed_ports
from engine.api.query import pattern_matches
from engine.errors import InvalidArgument
from engine.images.filters import parse_until

_STATUSES = {s.value for s in Status}
_LIST_KEYS = {"id", "name", "label", "status", "ancestor", "exited", "before", "since", "network", "volume",
              "health", "publish", "expose", "is-task", "isolation"}
_HEALTH = {"starting", "healthy", "unhealthy", "none"}
_BOOLS = {"true", "false", "1", "0"}
_PRUNE_KEYS = {"label", "label!", "until"}


def select(containers: list[Container], f: dict[str, list[str]], lookup: Callable[[str], Container],
           all_: bool, limit: int, *, networks_of: Callable[[Container], set[str]],
           mounts_of: Callable[[Container], list[dict[str, Any]]],
           published_of: Callable[[Container], list[dict[str, Any]]],
           lineage: set[str] | None = None) -> list[Container]:
    """docker ps: newest first; values of one filter OR'ed (labels AND'ed), filters AND'ed.

    `networks_of` gives the names and ids of a container's networks, `mounts_of` its inspect Mounts,
    `published_of` its published ports in the list's Ports shape; `lineage` the image IDs an `ancestor` filter
    selects.
    """
    unknown = set(f) - _LIST_KEYS
    if unknown:
        raise InvalidArgument(f"invalid filter '{min(unknown)}'")
    for status in f.get("status", []):
        if status not in _STATUSES:
            raise InvalidArgument(f"invalid filter 'status={status}'")
    for code in f.get("exited", []):
        if not code.lstrip("-").isdigit():
            raise InvalidArgument(f'strconv.Atoi: parsing "{code}": invalid syntax')
    for health in f.get("health", []):
        if health not in _HEALTH:
            raise InvalidArgument(f"Unrecognised filter value for health: {health}")
    for task in f.get("is-task", []):
        if task.lower() not in _BOOLS:
            raise InvalidArgument(f"invalid filter 'is-task=[{' '.join(f['is-task'])}]'")
    # Asking for a status, an exit code or a count implies stopped containers too.
    all_ = all_ or bool(f.get("status") or f.get("exited")) or limit > 0
    before = lookup(f["before"][0]).created if f.get("before") else None
    since = lookup(f["since"][0]).created if f.get("since") else None
    out = []
    for c in sorted(containers, key=lambda c: c.created, reverse=True):
        labels = c.config.get("Labels") or {}
        checks = [
            all_ or c.state.running or c.state.status == Status.RESTARTING,
            not f.get("id") or any(c.id.startswith(v) for v in f["id"]),
            not f.get("name") or any(_name_matches(v, c.name) for v in f["name"]),
            all(_label_matches(v, labels) for v in f.get("label", [])),
            not f.get("status") or c.state.status.value in f["status"],
            not f.get("exited") or (c.state.status == Status.EXITED and str(c.state.exit_code) in f["exited"]),
            lineage is None or c.image_id in lineage,
            before is None or c.created < before,
            since is None or c.created > since,
            not f.get("network") or _on_network(networks_of(c), f["network"]),
            not f.get("volume") or any(m["Source"] in f["volume"] or m["Destination"] in f["volume"]
                                       or m.get("Name") in f["volume"] for m in mounts_of(c)),
            # A stopped container keeps its last health status (dockerd's `unhealthy`); none is a swarm task.
            not f.get("health") or (c.health.Status if c.health else "none") in f["health"],
            not f.get("publish") or _ports_match(f["publish"], [(p["PublicPort"], p["Type"])
                                                                for p in published_of(c)]),
            # dockerd matches the ports of the container's network settings: a running container's only.
            not f.get("expose") or (c.state.running and _ports_match(f["expose"], exposed_ports(c))),
            not f.get("is-task") or any(v.lower() in ("false", "0") for v in f["is-task"]),
            # `isolation` is not looked at on Linux (dockerd lists every container whatever the value).
        ]
        if all(checks):
            out.append(c)
    return out[:limit] if limit > 0 else out


def prunable(f: dict[str, list[str]]) -> Callable[[Container], bool]:
    """container prune: which stopped containers go, checked when each one's turn comes (states move meanwhile).

    The filters are checked here, before anything is removed.
    """
    unknown = set(f) - _PRUNE_KEYS
    if unknown:
        raise InvalidArgument(f"invalid filter '{min(unknown)}'")
    until = _until(f.get("until", []))

    def matches(c: Container) -> bool:
        labels = c.config.get("Labels") or {}
        if c.state.running or (until is not None and c.created >= until):
            return False
        if not all(_label_matches(spec, labels) for spec in f.get("label", [])):
            return False
        return not any(_label_matches(spec, labels) for spec in f.get("label!", []))
    return matches


def _until(values: list[str]) -> float | None:
    """dockerd's until: unix seconds, an RFC 3339 time, or a duration back from now (`1h`)."""
    return parse_until(values[0]) if values else None


def _ports_match(specs: list[str], ports: list[tuple[int, str]]) -> bool:
    """publish= / expose= values: "80", "80/tcp", "8000-8080/udp"; no protocol is tcp, as in dockerd."""
    for spec in specs:
        port, _, proto = spec.partition("/")
        first, _, last = port.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise InvalidArgument(f"invalid port filter {spec!r}") from None
        for number in (lo, hi):
            if not 0 <= number <= 65535:
                raise InvalidArgument(f'strconv.ParseUint: parsing "{number}": value out of range')
        if any(lo <= p <= hi and (proto or "tcp") == t for p, t in ports):
            return True
    return False


def _on_network(networks: set[str], wanted: list[str]) -> bool:
    """network= values: a name, an ID or the start of one (dockerd's prefix match); `default` is the bridge."""
    ids = [n for n in networks if len(n) == 64]
    return any(("bridge" if v == "default" else v) in networks or (v and any(i.startswith(v) for i in ids))
               for v in wanted)


def _name_matches(pattern: str, name: str) -> bool:
    """dockerd tries the name with its slash and without, so that `^web$` finds `web`."""
    return pattern_matches(pattern, "/" + name) or pattern_matches(pattern, name)


def _label_matches(spec: str, labels: dict[str, str]) -> bool:
    key, sep, value = spec.partition("=")
    return key in labels and (not sep or labels[key] == value)
