"""`RUN --mount=...` into typed mounts, with BuildKit's keys and defaults.

The value is one CSV record (quotes allowed) of `key=value` fields, bare `ro`/`rw`/`readonly`/
`readwrite`/`required` meaning true. Types: `bind` (the default; read-only unless `rw`), `cache`
(read-write; `id` defaults to the target, `sharing` shared|private|locked), `tmpfs` (`size`),
`secret` and `ssh` (read-only; default targets `/run/secrets/<id>` and `/run/buildkit/ssh_agent.N`).
`from` (bind and cache) names a stage or image, resolved by the stage graph.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from enum import Enum

from engine.builder.dockerfile.errors import DockerfileError


class MountType(Enum):
    BIND = "bind"
    CACHE = "cache"
    TMPFS = "tmpfs"
    SECRET = "secret"
    SSH = "ssh"


class Sharing(Enum):
    SHARED = "shared"
    PRIVATE = "private"
    LOCKED = "locked"


@dataclass(frozen=True)
class Mount:
    type: MountType
    target: str
    source: str = ""
    from_: str = ""
    readonly: bool = False
    id: str = ""
    sharing: Sharing = Sharing.SHARED
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int = 0


_BOOL_KEYS = {"ro": True, "readonly": True, "rw": False, "readwrite": False}
_KEYS = frozenset({"type", "target", "dst", "destination", "source", "src", "from", "id", "sharing",
                   "mode", "uid", "gid", "required", "size", "ro", "readonly", "rw", "readwrite"})
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$", re.IGNORECASE)


def _bool(value: str, key: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise ValueError(f"invalid value for {key}: {value}")


def _int(value: str, key: str, base: int = 10) -> int:
    try:
        return int(value, base)
    except ValueError:
        raise ValueError(f"invalid value for {key}: {value}") from None


def _size(value: str) -> int:
    match = _SIZE.match(value.strip())
    if not match:
        raise ValueError(f"invalid value for size: {value}")
    return int(float(match.group(1)) * 1024 ** " kmgtp".index(match.group(2).lower() or " "))


def parse_mount(value: str, line: int, ssh_index: int = 0) -> Mount:
    try:
        return _parse(value, ssh_index)
    except ValueError as err:
        raise DockerfileError(str(err), line) from None


def _parse(value: str, ssh_index: int) -> Mount:
    fields = next(csv.reader([value]), [])
    opts: dict[str, str] = {}
    for item in fields:
        key, has, val = item.partition("=")
        key = key.strip().lower()
        if key not in _KEYS:
            raise ValueError(f"unexpected key '{key}' in '{item}'")
        if not has:
            if key in _BOOL_KEYS or key == "required":
                val = "true"
            else:
                raise ValueError(f"invalid field '{item}' must be a key=value pair")
        opts[{"dst": "target", "destination": "target", "src": "source"}.get(key, key)] = val
    try:
        kind = MountType(opts.get("type", "bind").lower())
    except ValueError:
        raise ValueError(f"unsupported mount type {json.dumps(opts['type'])}") from None
    readonly = kind in (MountType.BIND, MountType.SECRET, MountType.SSH)
    for key, ro in _BOOL_KEYS.items():
        if key in opts:
            readonly = _bool(opts[key], key) == ro
    target = opts.get("target", "")
    ident = opts.get("id", "")
    source = opts.get("source", "")
    if kind is MountType.SECRET:
        if opts.get("from"):
            raise ValueError("secret mount should not have a from")
        if source and ident:
            raise ValueError("both source and id can't be set")
        ident, source = ident or source, ""
        if not ident and not target:
            raise ValueError("invalid secret mount. one of source, target required")
        ident = ident or target.rstrip("/").rpartition("/")[2]
        target = target or f"/run/secrets/{ident}"
    elif kind is MountType.SSH:
        ident = ident or "default"
        target = target or f"/run/buildkit/ssh_agent.{ssh_index}"
    elif not target:
        raise ValueError(f"mount type {kind.value} requires a target")
    if kind is MountType.CACHE:
        ident = ident or target
    elif "sharing" in opts:
        raise ValueError(f"invalid cache sharing set for {kind.value} mount")
    if ident and kind in (MountType.BIND, MountType.TMPFS):
        raise ValueError(f"id is not allowed for {kind.value} mounts")
    if "from" in opts and kind not in (MountType.BIND, MountType.CACHE):
        raise ValueError(f"from is not allowed for {kind.value} mounts")
    if "source" in opts and kind in (MountType.TMPFS, MountType.SSH):
        raise ValueError(f"source is not allowed for {kind.value} mounts")
    if "size" in opts and kind is not MountType.TMPFS:
        raise ValueError("size is only allowed for tmpfs mounts")
    owned = kind in (MountType.CACHE, MountType.SECRET, MountType.SSH)
    for key in ("mode", "uid", "gid"):
        if key in opts and not owned:
            raise ValueError(f"{key} not allowed for {json.dumps(kind.value)} type mounts")
    if "required" in opts and kind not in (MountType.SECRET, MountType.SSH):
        raise ValueError(f"unexpected key 'required' for mount type '{kind.value}'")
    try:
        sharing = Sharing(opts.get("sharing", "shared").lower())
    except ValueError:
        raise ValueError(f"unsupported sharing value {json.dumps(opts['sharing'])}") from None
    return Mount(
        type=kind, target=target, source=source, from_=opts.get("from", ""),
        readonly=readonly, id=ident, sharing=sharing,
        mode=_int(opts["mode"], "mode", 8) if "mode" in opts else None,
        uid=_int(opts["uid"], "uid") if "uid" in opts else None,
        gid=_int(opts["gid"], "gid") if "gid" in opts else None,
        required=_bool(opts["required"], "required") if "required" in opts else False,
        size=_size(opts["size"]) if "size" in opts else 0,
    )
