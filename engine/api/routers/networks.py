"""/networks: create, list, inspect, remove, prune, connect and disconnect (docker network ...)."""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from engine import prune_guard
from engine.api import versions
from engine.api.app import Router
from engine.api.gofields import go_keys
from engine.api.query import filters, pattern_matches
from engine.api.responses import empty, json_response, read_json
from engine.backend import Backend
from engine.containers.fields import REFUSED, is_unset, lookup
from engine.errors import Forbidden, InvalidArgument
from engine.images.filters import parse_until
from engine.networks.model import Network

_FILTERS = {"driver", "id", "label", "name", "scope", "type", "dangling"}
_OPEN = ConfigDict(extra="allow")


class IPAMConfigModel(BaseModel):
    model_config = _OPEN
    Subnet: str | None = None
    IPRange: str | None = None
    Gateway: str | None = None
    AuxiliaryAddresses: dict[str, str] | None = None  # refused (_refuse_unsupported), typed to be found


class IPAMModel(BaseModel):
    model_config = _OPEN
    Driver: str | None = None
    Config: list[IPAMConfigModel] | None = None
    Options: dict[str, str] | None = None  # refused, as above


class ConfigReference(BaseModel):
    model_config = _OPEN
    Network: str | None = None


class NetworkCreate(BaseModel):
    model_config = _OPEN
    Name: str
    Driver: str | None = None
    Scope: str | None = None
    Ingress: bool | None = None
    ConfigOnly: bool | None = None
    ConfigFrom: ConfigReference | None = None
    Internal: bool | None = None
    Attachable: bool | None = None
    EnableIPv4: bool | None = None
    EnableIPv6: bool | None = None
    IPAM: IPAMModel | None = None
    Options: dict[str, str] | None = None
    Labels: dict[str, str] | None = None


class EndpointIPAMConfig(BaseModel):
    model_config = _OPEN
    IPv4Address: str | None = None
    IPv6Address: str | None = None
    LinkLocalIPs: list[str] | None = None


class EndpointSettings(BaseModel):
    """The fields the network service reads, typed as in Go's EndpointSettings."""

    model_config = _OPEN
    Aliases: list[str] | None = None
    Links: list[str] | None = None
    MacAddress: str | None = None
    IPAMConfig: EndpointIPAMConfig | None = None


class Connect(BaseModel):
    model_config = _OPEN
    Container: str
    EndpointConfig: EndpointSettings | None = None


class Disconnect(BaseModel):
    model_config = _OPEN
    Container: str
    Force: bool | None = None


def _model(model: type[BaseModel], body: Any, what: str) -> Any:
    if not isinstance(body, dict):
        raise InvalidArgument(f"invalid {what}: expected a JSON object")
    try:
        return model.model_validate(go_keys(model, body))
    except ValidationError as e:
        err = e.errors()[0]
        raise InvalidArgument(f"invalid {what}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


def _refuse_unsupported(body: dict[str, Any]) -> None:
    """What a network create may ask that pyengined cannot do is refused by name, never dropped."""
    if body.get("Ingress"):
        raise InvalidArgument("Ingress networks are swarm networks: this node is not part of a swarm")
    if body.get("Scope") not in (None, "", "local"):
        raise InvalidArgument(f"network scope {body['Scope']!r} is not supported: only local networks are")
    if body.get("ConfigOnly") or (body.get("ConfigFrom") or {}).get("Network"):
        raise InvalidArgument("config-only networks (ConfigOnly, ConfigFrom) are not supported")
    ipam = body.get("IPAM") or {}
    if ipam.get("Driver") not in (None, "", "default"):
        raise InvalidArgument(f"IPAM driver {ipam['Driver']!r} is not supported: only the default one is")
    if ipam.get("Options"):
        raise InvalidArgument("IPAM options are not supported")
    for cfg in ipam.get("Config") or []:
        if isinstance(cfg, dict) and cfg.get("AuxiliaryAddresses"):
            raise InvalidArgument("IPAM AuxiliaryAddresses are not supported")


def _refuse_unsupported_endpoint(settings: dict[str, Any]) -> None:
    """The endpoint settings a create refuses (engine/containers/fields.py), refused on a connect too."""
    for path, option in REFUSED.items():
        head, _, rest = path.partition(".")
        if head == "EndpointSettings" and not all(is_unset(v) for v in lookup(settings, rest.split("."))):
            raise InvalidArgument(f"EndpointConfig.{rest} ({option}) is not supported by this engine")


def _by_family(configs: list[IPAMConfigModel]) -> tuple[IPAMConfigModel | None, IPAMConfigModel | None]:
    """The IPv4 and the IPv6 pool asked for, one of each at most; a pool without a subnet is an IPv4 one."""
    found: dict[int, IPAMConfigModel] = {}
    for cfg in configs:
        version = 4
        if cfg.Subnet:
            try:
                version = ipaddress.ip_network(cfg.Subnet, strict=False).version
            except ValueError:
                raise InvalidArgument(f"invalid subnet {cfg.Subnet!r}: not a CIDR network address") from None
        if version in found:
            raise InvalidArgument(f"only one IPv{version} subnet per network is supported")
        found[version] = cfg
    return found.get(4), found.get(6)


def register(r: Router, b: Backend) -> None:
    svc = b.networks

    def event(action: str, n: Network) -> None:
        b.events.network(action, n.id, n.name, n.driver)

    async def create(request: web.Request) -> web.Response:
        body = await read_json(request)
        if isinstance(body, dict):
            body = go_keys(NetworkCreate, body)
        req = _model(NetworkCreate, body, "network config")
        _refuse_unsupported(body)
        if req.EnableIPv4 is False:
            raise InvalidArgument("IPv6-only networks (EnableIPv4 false, --ipv4=false) are not supported")
        v4, v6 = _by_family((req.IPAM.Config if req.IPAM else None) or [])
        if v6 is not None and not req.EnableIPv6:
            raise InvalidArgument(f"an IPv6 subnet ({v6.Subnet}) needs EnableIPv6 (docker network create --ipv6)")
        v4, v6 = v4 or IPAMConfigModel(), v6 or IPAMConfigModel()
        n = await svc.create(req.Name, driver=req.Driver or "bridge", subnet=v4.Subnet, gateway=v4.Gateway,
                             ip_range=v4.IPRange, internal=bool(req.Internal), attachable=bool(req.Attachable),
                             labels=req.Labels, options=req.Options, ipv6=bool(req.EnableIPv6), subnet6=v6.Subnet,
                             gateway6=v6.Gateway, ip_range6=v6.IPRange,
                             ipam_options=req.IPAM.Options if req.IPAM is not None else None)
        event("create", n)
        return json_response({"Id": n.id, "Warning": ""}, 201)

    async def list_(request: web.Request) -> web.Response:
        f = filters(request.query)
        unknown = set(f) - _FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        _check_values(f)
        v = versions.of(request)
        return json_response([versions.network(svc.inspect(n), v) for n in svc.list()
                              if _matches(n, f, bool(svc.users(n, running=True)))])

    async def inspect(request: web.Request) -> web.Response:
        return json_response(versions.network(svc.inspect(svc.get(request.match_info["id"])), versions.of(request)))

    async def remove(request: web.Request) -> web.Response:
        n = await b.creator.remove_network(request.match_info["id"])
        event("destroy", n)
        return empty()

    async def prune(request: web.Request) -> web.Response:
        f = filters(request.query)
        unknown = set(f) - {"label", "label!", "until"}
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        until = min((parse_until(v) for v in f.get("until", [])), default=None)
        removed = []
        with b.prunes.running(prune_guard.NETWORKS):
            for n in svc.list():
                if (n.builtin or not all(_label(spec, n.labels) for spec in f.get("label", []))
                        or any(_label(spec, n.labels) for spec in f.get("label!", []))
                        or (until is not None and n.created >= until)):
                    continue
                try:
                    await b.creator.remove_network(n.id)
                except Forbidden:
                    continue  # a running container is on it
                event("destroy", n)
                removed.append(n.name)
        b.events.publish("network", "prune", "", {"reclaimed": "0"})
        return json_response({"NetworksDeleted": removed or None})

    async def connect(request: web.Request) -> web.Response:
        body = await read_json(request)
        req = _model(Connect, body, "connect request")
        _refuse_unsupported_endpoint(body.get("EndpointConfig") or {})
        n = svc.get(request.match_info["id"])
        # The service tells of the connection once the container is wired to it (it may not run).
        await b.creator.connect(req.Container, n.id, (req.EndpointConfig or EndpointSettings()).model_dump())
        return empty(200)

    async def disconnect(request: web.Request) -> web.Response:
        req = _model(Disconnect, await read_json(request), "disconnect request")
        n = svc.get(request.match_info["id"])
        await b.creator.disconnect(req.Container, n.id)
        return empty(200)

    r.add("POST", "/networks/create", create)
    r.add("GET", "/networks", list_)
    r.add("POST", "/networks/prune", prune)
    r.add("GET", "/networks/{id}", inspect)
    r.add("DELETE", "/networks/{id}", remove)
    r.add("POST", "/networks/{id}/connect", connect)
    r.add("POST", "/networks/{id}/disconnect", disconnect)



def _label(spec: str, labels: dict[str, str]) -> bool:
    key, eq, value = spec.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _check_values(f: dict[str, list[str]]) -> None:
    """dockerd's refusals of values no network could match."""
    for v in f.get("type", []):
        if v not in ("custom", "builtin"):
            raise InvalidArgument(f"invalid filter: 'type'='{v}'")
    for v in f.get("dangling", []):
        if v.lower() not in ("1", "true", "0", "false"):
            raise InvalidArgument(f"invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" "
                                  "(or \"0\")")


def _matches(n: Network, f: dict[str, list[str]], in_use: bool) -> bool:
    checks: dict[str, Callable[[str], bool]] = {
        "driver": lambda v: n.driver == v,
        "id": lambda v: n.id.startswith(v),
        "name": lambda v: pattern_matches(v, n.name),
        "scope": lambda v: v == "local",
        "type": lambda v: v == ("builtin" if n.builtin else "custom"),
        "dangling": lambda v: (v.lower() in ("1", "true")) == (not in_use and not n.builtin),
    }
    if not all(_label(spec, n.labels) for spec in f.get("label", [])):
        return False
    return all(any(checks[key](v) for v in values) for key, values in f.items() if values and key != "label")
