"""The JSON shapes of container inspect, list and size (Docker API 1.41).

Pure functions of a container record and the facts other services know about it (its
network settings, published ports, mounts, writable-layer size), passed in by the caller:
the shapes can be read and tested without a network, a volume or a runtime.
"""
from __future__ import annotations

from typing import Any

from engine.containers.state import Status, rfc3339
from engine.containers.store import Container, Storage


def network_mode(c: Container) -> str:
    """The network a container joins: "default" is Docker's name for the bridge network."""
    mode = c.host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def exposed(c: Container) -> list[str]:
    return list(c.config.get("ExposedPorts") or {})


def exposed_ports(c: Container) -> list[tuple[int, str]]:
    """ExposedPorts keys ("80/tcp", "8000-8010/udp", "53") as one (port, protocol) per port."""
    out = []
    for key in exposed(c):
        port, _, proto = key.partition("/")
        first, _, last = port.partition("-")
        out += [(p, proto or "tcp") for p in range(int(first), int(last or first) + 1)]
    return out


def inspect(c: Container, *, storage: Storage, exec_ids: list[str], mounts: list[dict[str, Any]],
            network_settings: dict[str, Any]) -> dict[str, Any]:
    """GET /containers/{id}/json.

    The /etc file paths are the host files bind-mounted there (a user's own mount included), reported
    as dockerd does from the first start on; MergedDir only while the layers are mounted.
    """
    etc = storage.etc if c.state.started_at is not None else {}
    return {
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": c.path,
        "Args": c.args,
        "State": {**c.state.docker(), **({"Health": c.health.model_dump()} if c.health else {})},
        "Image": c.image_id,
        "ResolvConfPath": etc.get("/etc/resolv.conf", ""),
        "HostnamePath": etc.get("/etc/hostname", ""),
        "HostsPath": etc.get("/etc/hosts", ""),
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": storage.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        # No AppArmor profile is loaded here (/info does not claim one): only an asked-for `unconfined` shows.
        "AppArmorProfile": "unconfined" if {"apparmor=unconfined", "apparmor:unconfined"}
        & set(c.host_config.get("SecurityOpt") or []) else "",
        # dockerd's null, not [], when the container runs no exec.
        "ExecIDs": exec_ids or None,
        "HostConfig": c.host_config,
        "GraphDriver": {"Name": storage.driver, "Data": _graph_data(c, storage)},
        "Mounts": mounts,
        "Config": c.config,
        "NetworkSettings": network_settings,
    }


def _graph_data(c: Container, storage: Storage) -> dict[str, str] | None:
    if storage.graph_data is None or not (c.state.running and c.rootfs):
        return storage.graph_data
    return {**storage.graph_data, "MergedDir": c.rootfs}


def summary(c: Container, *, networks: dict[str, Any], published: list[dict[str, Any]],
            mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """One entry of GET /containers/json: exposed ports nobody published are listed without a public side."""
    bound = {f"{p['PrivatePort']}/{p['Type']}" for p in published}
    mode = network_mode(c)
    # Ports belong to the container's own network endpoint: none without one (none, host, another's), as in dockerd.
    own_endpoint = mode not in ("none", "host") and not mode.startswith("container:")
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image,
        "ImageID": c.image_id,
        # dockerd quotes each argument holding a space, so that the command reads as typed.
        "Command": " ".join([c.path, *(f"'{a}'" if " " in a else a for a in c.args)]),
        "Created": int(c.created),
        # A container that is not running has no ports to show, exposed or published, as in dockerd.
        "Ports": published + [{"PrivatePort": port, "Type": proto} for port, proto in exposed_ports(c)
                              if f"{port}/{proto}" not in bound] if c.state.running and own_endpoint else [],
        "Labels": c.config.get("Labels") or {},
        "State": c.state.status.value,
        "Status": c.state.text() + _health_suffix(c),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": networks},
        "Mounts": mounts,
    }


def size(rw: int | None, root: int | None = None, *, listed: bool = False) -> dict[str, int]:
    """The ?size=1 fields; an unknown size (no snapshot any more) leaves them out, as dockerd does, and so does
    a zero in a listing (Go's omitempty there; inspect's fields are pointers, which keep it)."""
    fields = {"SizeRw": rw, "SizeRootFs": root}
    return {k: v for k, v in fields.items() if v is not None and (v or not listed)}


def _health_suffix(c: Container) -> str:
    if c.health is None or not c.state.running or c.state.status == Status.PAUSED:
        return ""  # dockerd's "Up 5 seconds (Paused)" tells no health
    return " (health: starting)" if c.health.Status == "starting" else f" ({c.health.Status})"
