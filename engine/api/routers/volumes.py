"""/volumes: create, list, inspect, remove, prune (docker volume ...)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from engine import prune_guard
from engine.api import versions
from engine.api.app import Router
from engine.api.gofields import go_keys
from engine.api.query import boolean, filters, pattern_matches
from engine.api.responses import empty, json_response, read_json
from engine.backend import Backend
from engine.errors import InvalidArgument, Unavailable
from engine.volumes.model import Volume

# dockerd's sets: `label!` only prunes, `dangling`, `driver` and `name` only list.
_LIST_FILTERS = {"dangling", "driver", "label", "name"}
_PRUNE_FILTERS = {"label", "label!"}


class VolumeCreate(BaseModel):
    model_config = ConfigDict(extra="allow")
    Name: str | None = None
    Driver: str | None = None
    DriverOpts: dict[str, str] | None = None
    Labels: dict[str, str] | None = None


def _label(spec: str, labels: dict[str, str]) -> bool:
    key, eq, value = spec.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _truthy(values: list[str]) -> bool:
    """The `all` filter of prune: a boolean in Go's spellings."""
    out = False
    for value in values:
        if value.lower() in ("1", "t", "true"):
            out = True
        elif value.lower() not in ("0", "f", "false"):
            raise InvalidArgument(f"invalid filter 'all={value}'")
    return out


def register(r: Router, b: Backend) -> None:
    svc = b.volumes

    def selector(f: dict[str, list[str]], accepted: set[str]) -> Any:
        unknown = set(f) - accepted
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        for x in f.get("dangling", []):
            if x.lower() not in ("1", "true", "0", "false"):
                raise InvalidArgument(f"invalid filter 'dangling={x}'")

        def matches(v: Volume) -> bool:
            checks: dict[str, Callable[[str], bool]] = {
                "dangling": lambda x: (x.lower() in ("1", "true")) == (not svc.users(v.name)),
                "driver": lambda x: v.driver == x,
                "name": lambda x: pattern_matches(x, v.name),
            }
            if not all(_label(spec, v.labels or {}) for spec in f.get("label", [])):
                return False
            if any(_label(spec, v.labels or {}) for spec in f.get("label!", [])):
                return False
            return all(any(checks[k](x) for x in vals) for k, vals in f.items()
                       if vals and k not in ("label", "label!"))
        return matches

    async def create(request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise InvalidArgument("invalid volume config: expected a JSON object")
        try:
            req = VolumeCreate.model_validate(go_keys(VolumeCreate, body))
        except ValidationError as e:
            err = e.errors()[0]
            raise InvalidArgument(f"invalid volume config: {'.'.join(str(p) for p in err['loc'])}: "
                                  f"{err['msg']}") from None
        if (req.model_extra or {}).get("ClusterVolumeSpec"):
            raise Unavailable("ClusterVolumeSpec: cluster volumes need a swarm manager, and this engine has no "
                              "swarm mode")
        v = await svc.create(req.Name or None, driver=req.Driver or "local", options=req.DriverOpts,
                             labels=req.Labels)
        # dockerd tells of every create, an existing volume's included.
        b.events.volume("create", v.name, driver=v.driver)
        return json_response(svc.inspect(v), 201)

    async def list_(request: web.Request) -> web.Response:
        matches = selector(filters(request.query), _LIST_FILTERS)
        return json_response({"Volumes": [svc.inspect(v) for v in svc.list() if matches(v)], "Warnings": None})

    async def inspect(request: web.Request) -> web.Response:
        return json_response(svc.inspect(svc.get(request.match_info["name"])))

    async def remove(request: web.Request) -> web.Response:
        v = await svc.remove(request.match_info["name"], force=boolean(request.query, "force"))
        if v is not None:
            b.events.volume("destroy", v.name, driver=v.driver)
        return empty()

    async def prune(request: web.Request) -> web.Response:
        f = filters(request.query)
        if "all" in f and versions.of(request) < (1, 42):
            raise InvalidArgument("invalid filter 'all'")  # it came with 1.42: dockerd 20.10 knows none
        everything = versions.prunes_named_volumes(versions.of(request), _truthy(f.pop("all", [])))
        with b.prunes.running(prune_guard.VOLUMES):
            removed, reclaimed = await svc.prune(selector(f, _PRUNE_FILTERS), anonymous_only=not everything)
        for name in removed:
            b.events.volume("destroy", name)
        b.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return json_response({"VolumesDeleted": removed, "SpaceReclaimed": reclaimed})

    async def update(_: web.Request) -> web.Response:
        # Only swarm's cluster volumes can be updated; dockerd outside a swarm refuses before reading anything.
        raise Unavailable("volume update only valid for cluster volumes, but swarm is unavailable")

    r.add("POST", "/volumes/create", create)
    r.add("GET", "/volumes", list_)
    r.add("POST", "/volumes/prune", prune)
    r.add("GET", "/volumes/{name}", inspect)
    r.add("PUT", "/volumes/{name}", update)
    r.add("DELETE", "/volumes/{name}", remove)
