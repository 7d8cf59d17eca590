"""`POST /build`'s query string as the builder's options, each honoured or refused by name.

The docker CLI sends `rm` only as `rm=0` (so it defaults to true), `networkmode` only when not
"default", and JSON for buildargs, labels and cachefrom; the SDK sends every flag explicitly.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import MultiMapping

from engine.api import query
from engine.errors import InvalidArgument
from engine.images import platforms
from engine.images.pull import RegistryAuth
from runtime.client import InvalidArgument as RuntimeInvalidArgument
from runtime.client.reference import parse

# Limits a RUN step's container gets, as HostConfig fields.
_LIMITS = {"memory": "Memory", "memswap": "MemorySwap", "cpushares": "CpuShares", "cpusetcpus": "CpusetCpus",
           "cpusetmems": "CpusetMems", "cpuperiod": "CpuPeriod", "cpuquota": "CpuQuota", "shmsize": "ShmSize"}
_CPUSETS = ("cpusetcpus", "cpusetmems")


@dataclass(frozen=True)
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = ()
    target: str = ""
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    remove: bool = True  # intermediate containers after a successful step
    force_remove: bool = False  # ... after a failed one too
    cache_from: tuple[str, ...] = ()
    network_mode: str = "default"
    extra_hosts: tuple[str, ...] = ()
    platform: platforms.Platform | None = None
    quiet: bool = False
    remote: str = ""
    host_config: dict[str, Any] = field(default_factory=dict)  # the RUN containers' limits
    squash: bool = False  # the target stage's layers as one (experimental mode only, as dockerd)


def _json(q: Mapping[str, str], name: str, kind: type) -> Any:
    raw = q.get(name)
    if not raw:
        return kind()
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidArgument(f"invalid {name}: {raw!r} is not JSON") from None
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise InvalidArgument(f"invalid {name}: expected a JSON {'object' if kind is dict else 'array'}")
    return value


def _tag(name: str) -> str:
    try:
        ref = parse(name)
    except RuntimeInvalidArgument as e:
        raise InvalidArgument(f"invalid reference format: {name}: {e.message}") from None
    if ref.digest is not None:
        raise InvalidArgument(f"invalid tag {name!r}: a build cannot tag a digest reference")
    return name


def parse_options(q: MultiMapping[str], *, experimental: bool = False) -> BuildOptions:
    """The build's query; `experimental`: the daemon's experimental mode, which dockerd requires for squash."""
    version = q.get("version", "1")
    if version != "1":
        raise InvalidArgument(f"builder version {version!r} (BuildKit) is not served: this daemon builds with the "
                              "classic builder API (version=1); unset DOCKER_BUILDKIT or install no buildx")
    squash = query.boolean(q, "squash")
    if squash and not experimental:
        raise InvalidArgument("squash is only supported with experimental mode")
    if q.get("outputs"):
        raise InvalidArgument("outputs are a BuildKit option: the classic builder stores the image in this daemon")
    if q.get("securityopt") not in (None, "", "null", "[]"):
        raise InvalidArgument("build option securityopt is not supported by this daemon (the build's RUN steps run "
                              "with the default security options)")
    isolation = q.get("isolation", "")
    if isolation not in ("", "default", "process"):
        raise InvalidArgument(f"isolation {isolation!r} is not supported on linux")
    build_args = _json(q, "buildargs", dict)
    if any(not isinstance(v, (str, type(None))) for v in build_args.values()):
        raise InvalidArgument("invalid buildargs: values must be strings or null")
    labels = _json(q, "labels", dict)
    if any(not isinstance(v, str) for v in labels.values()):
        raise InvalidArgument("invalid labels: values must be strings")
    cache_from = _json(q, "cachefrom", list)
    host_config: dict[str, Any] = {}
    for name, key in _LIMITS.items():
        if name in _CPUSETS:
            if q.get(name):
                host_config[key] = q[name]
            continue
        value = query.integer(q, name)
        if value:
            host_config[key] = value
    ulimits = _json(q, "ulimits", list)
    if ulimits:
        host_config["Ulimits"] = ulimits
    cgroup_parent = q.get("cgroupparent", "")
    if cgroup_parent:
        host_config["CgroupParent"] = cgroup_parent
    extra_hosts = tuple(h for raw in q.getall("extrahosts", []) for h in raw.split(",") if h)
    network_mode = q.get("networkmode") or "default"
    return BuildOptions(
        dockerfile=q.get("dockerfile") or "Dockerfile",
        tags=tuple(_tag(t) for t in q.getall("t", []) if t),
        target=q.get("target", ""),
        build_args=build_args, labels=labels,
        no_cache=query.boolean(q, "nocache"), pull=query.boolean(q, "pull"),
        remove=query.boolean(q, "rm", True), force_remove=query.boolean(q, "forcerm"),
        cache_from=tuple(str(c) for c in cache_from), network_mode=network_mode, extra_hosts=extra_hosts,
        platform=platforms.parse(q["platform"]) if q.get("platform") else None,
        quiet=query.boolean(q, "q"), remote=q.get("remote", ""), host_config=host_config, squash=squash)


def registry_auths(header: str | None) -> dict[str, RegistryAuth]:
    """X-Registry-Config: base64 JSON of {registry: auth config}; an unreadable one is no credentials."""
    if not header:
        return {}
    text = header.strip().replace("+", "-").replace("/", "_")
    try:
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out = {}
    for registry, auth in doc.items():
        if isinstance(auth, dict):
            with contextlib.suppress(ValueError):
                out[str(registry)] = RegistryAuth.model_validate(auth)
    return out
