"""Legacy links (--link) on the default bridge: the linked container's address and ports, as Docker hands them on.

A link `name[:alias]` is checked at create (the container must exist; only the default bridge
has links) and kept as dockerd shows it, `/name:/parent/alias`. Each start resolves it again:
the linked container must be running on the default bridge, and the starting container gets
`ALIAS_NAME`, `ALIAS_PORT` and `ALIAS_PORT_<port>_<PROTO>[_ADDR|_PORT|_PROTO]` for each port the
other exposes, `ALIAS_ENV_<VAR>` for its variables (bar HOME and PATH), and a hosts entry for
the alias, the other's hostname and its name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.containers.store import Container
from engine.errors import Conflict, InvalidArgument, NotFound

# The variables of the other container not handed on: the image build's, the same in every container.
_SKIPPED_ENV = ("HOME", "PATH")


@dataclass
class Linked:
    env: list[str] = field(default_factory=list)
    hosts: list[tuple[str, str]] = field(default_factory=list)  # (names, address) for /etc/hosts


def _split(spec: str) -> tuple[str, str]:
    name, _, alias = spec.partition(":")
    name, alias = name.strip("/"), (alias or name).strip("/")
    if not name or not alias:
        raise InvalidArgument(f"invalid link format: {spec!r}: use name:alias")
    return name, alias.rsplit("/", 1)[-1]


def at_create(links: list[str], parent: str, mode: str, find: Callable[[str], Container | None]) -> list[str]:
    """The links as HostConfig keeps them (`/name:/parent/alias`), after dockerd's checks at create."""
    if not links:
        return []
    if mode == "host":
        raise InvalidArgument("conflicting options: host type networking can't be used with links. This would "
                              "result in undefined behavior")
    if mode.startswith("container:"):
        raise InvalidArgument("conflicting options: container type network can't be used with links. This would "
                              "result in undefined behavior")
    if mode == "none":
        raise InvalidArgument("Links (--link) are not supported by this engine with network mode none")
    out = []
    for spec in links:
        name, alias = _split(spec)
        child = find(name)
        if child is None:
            raise InvalidArgument(f"could not get container for {name}: No such container: {name}")
        out.append(f"/{child.name}:/{parent}/{alias}")
    return out


def _ports(exposed: list[str]) -> list[tuple[int, str]]:
    """(port, proto) by number, tcp first, as Docker orders them; ranges as their ports."""
    out = []
    for key in exposed:
        ports, _, proto = key.partition("/")
        first, _, last = ports.partition("-")
        for port in range(int(first), int(last or first) + 1):
            out.append((port, proto or "tcp"))
    return sorted(set(out), key=lambda p: (p[0], p[1] != "tcp", p[1]))


def environment(link_name: str, address: str, exposed: list[str], env: list[str]) -> list[str]:
    """The variables a link hands on; `link_name` is `/parent/alias`."""
    alias = link_name.rsplit("/", 1)[-1].upper().replace("-", "_")
    out = []
    ports = _ports(exposed)
    if ports:
        port, proto = ports[0]
        out.append(f"{alias}_PORT={proto}://{address}:{port}")
    for port, proto in ports:
        prefix = f"{alias}_PORT_{port}_{proto.upper()}"
        out += [f"{prefix}={proto}://{address}:{port}", f"{prefix}_ADDR={address}", f"{prefix}_PORT={port}",
                f"{prefix}_PROTO={proto}"]
    out.append(f"{alias}_NAME={link_name}")
    for item in env:
        key, sep, value = item.partition("=")
        if sep and key not in _SKIPPED_ENV:
            out.append(f"{alias}_ENV_{key}={value}")
    return out


def resolve(c: Container, find: Callable[[str], Container | None], address: Callable[[str], str | None], *,
            strict: bool = True) -> Linked:
    """What `c`'s links give it for this run. Strict (at start): a link to a container that is not running on
    the default bridge is refused, as dockerd refuses it; otherwise such a link is left out."""
    out = Linked()
    for link in c.host_config.get("Links") or []:
        child_ref, _, link_name = link.partition(":")
        child = find(child_ref.lstrip("/"))
        ip = address(child.id) if child is not None and child.state.running else None
        if child is None or ip is None:
            if not strict:
                continue
            if child is None:
                raise NotFound(f"could not get container for {child_ref.lstrip('/')}: No such container")
            if not child.state.running:
                raise Conflict(f"Cannot link to a non running container: /{child.name} AS {link_name}")
            raise InvalidArgument(f"Cannot link to /{child.name}, as it does not belong to the default network")
        alias = link_name.rsplit("/", 1)[-1]
        names = [alias, child.config.get("Hostname") or child.id[:12]]
        if alias != child.name:
            names.append(child.name)
        out.hosts.append((" ".join(names), ip))
        out.env += environment(link_name, ip, list(child.config.get("ExposedPorts") or {}),
                               list(child.config.get("Env") or []))
    return out


def parent_of(link: str) -> tuple[str, str]:
    """`parent/alias` (as `docker rm --link` names a link): the parent's name and the link's full name.

    A bare name is a container's own name, which is no link: dockerd's Conflict.
    """
    full = "/" + link.strip("/")
    parent = full.rsplit("/", 1)[0]
    if not parent:
        raise Conflict("Conflict, cannot remove the default link name of the container")
    return parent.lstrip("/"), full


def without(links: list[str], full: str) -> list[str]:
    """HostConfig.Links (`/name:/parent/alias`) less the link named `full`."""
    return [link for link in links if link.partition(":")[2] != full]

