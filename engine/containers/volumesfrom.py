"""--volumes-from: the mounts a new container copies from others, as dockerd copies their mount points.

Each `container[:ro|rw]` gives its volumes (named and anonymous, which the new container only
uses: removing it never removes them) and its host binds, its own and those it copied in
turn. A mount read-only in its source stays so; `:ro` makes the others read-only too (`:rw`, as
dockerd reads it, never makes a read-only mount writable).
The new container's own binds, mounts and tmpfs win over a copied mount at the same place.
"""
from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.containers import bindmodes
from engine.containers.store import Container
from engine.errors import InvalidArgument, NotFound


@dataclass
class Inherited:
    volumes: list[dict[str, Any]] = field(default_factory=list)  # {name, destination, mode, read_only[, subpath]}
    # {source, destination, read_only, propagation, depth (how far down read-only goes), recursive}
    binds: list[dict[str, Any]] = field(default_factory=list)

    def destinations(self) -> set[str]:
        return {m["destination"] for m in self.volumes + self.binds}


def _split(spec: str) -> tuple[str, bool]:
    """The container and whether the mode asks for read-only, as dockerd's ParseVolumesFrom checks them: the
    mounts keep their own propagation and copy mode, and their read-only depth."""
    ref, _, mode = spec.partition(":")
    if not ref:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    parsed = bindmodes.parse(mode)
    if parsed.depth:
        raise InvalidArgument(f'mount mode "{mode}" is not supported for volumes-from mounts: invalid mode: {mode}')
    if parsed.propagation or parsed.nocopy:
        raise InvalidArgument(f"invalid mode: {mode}")
    return ref, parsed.read_only


def binds_of(c: Container) -> list[dict[str, Any]]:
    """A container's host binds: -v /host:/dst, --mount type=bind, and those it copied from others."""
    out = []
    for b in c.host_config.get("Binds") or []:
        parts = b.split(":")
        if not b.startswith("/") or len(parts) < 2:
            continue
        mode = parts[2] if len(parts) == 3 else ""
        out.append({"source": parts[0], "destination": posixpath.normpath(parts[1]),
                    "read_only": bindmodes.is_read_only(mode), "depth": bindmodes.depth_of(mode),
                    "propagation": next((o for o in mode.split(",") if o in bindmodes.PROPAGATIONS), "rprivate")})
    for m in c.host_config.get("Mounts") or []:
        if m.get("Type") == "bind":
            bind = m.get("BindOptions") or {}
            depth = "all" if bind.get("ReadOnlyForceRecursive") else "top" if bind.get("ReadOnlyNonRecursive") else ""
            out.append({"source": m.get("Source"), "destination": posixpath.normpath(m.get("Target") or "/"),
                        "read_only": bool(m.get("ReadOnly")), "depth": depth,
                        "recursive": not bind.get("NonRecursive"),
                        "propagation": bind.get("Propagation") or "rprivate"})
    return out + list(c.binds_from)


def inherited(specs: list[str], get: Callable[[str], Container], explicit: set[str]) -> Inherited:
    """What `specs` (HostConfig.VolumesFrom) copy; mounts at `explicit` destinations (the new container's own) are
    left out. A missing container is dockerd's 400: a 404 at create is what the docker CLI reads as a missing
    image, and it would go and pull one."""
    out = Inherited()
    for spec in specs:
        ref, read_only = _split(spec)
        try:
            source = get(ref)
        except NotFound as e:
            raise InvalidArgument(e.message) from None
        for v in source.volumes:
            if v["destination"] not in explicit:
                # dockerd copies no mode: inspect shows "" (not the source's "z"), read-only or not.
                out.volumes.append({"name": v["name"], "destination": v["destination"], "mode": "",
                                    "read_only": v["read_only"] or read_only, "anonymous": bool(v.get("anonymous")),
                                    **({"subpath": v["subpath"]} if v.get("subpath") else {})})
        for b in binds_of(source):
            if b["destination"] not in explicit:
                out.binds.append({**b, "read_only": b["read_only"] or read_only})
    # A later source's mount at a destination replaces an earlier one's.
    last = {m["destination"]: id(m) for m in out.volumes + out.binds}
    out.volumes = [v for v in out.volumes if last[v["destination"]] == id(v)]
    out.binds = [b for b in out.binds if last[b["destination"]] == id(b)]
    return out
