"""The API versions this engine speaks, and what an answer looks like at each of them.

Services answer in the newest shape. An older client gets the answer its version was
written against, made here from the newest one, the way dockerd's routers adapt theirs:
no service carries a version check. The differences are those of the Engine API's
version history that concern what this engine serves.
"""
from __future__ import annotations

import re
from typing import Any

from aiohttp import web

Version = tuple[int, int]

NEWEST: Version = (1, 50)
# dockerd 20.10's oldest; clients of that age (docker 1.0 is 1.12) still create, start, kill and inspect.
OLDEST: Version = (1, 12)
_KEY = "api_version"
_FORM = re.compile(r"^(\d+)\.(\d+)$")


def parse(text: str) -> Version:
    m = _FORM.match(text)
    if m is None:
        raise ValueError(f"not an API version: {text!r}")
    return int(m.group(1)), int(m.group(2))


def text(v: Version) -> str:
    return f"{v[0]}.{v[1]}"


def of(request: web.Request) -> Version:
    """The version a request was made at; an unversioned path speaks the newest, as dockerd's does."""
    v: Version = request.get(_KEY, NEWEST)
    return v


def remember(request: web.Request, v: Version) -> None:
    request[_KEY] = v


def check(v: Version) -> str | None:
    """dockerd's refusal of a version outside the range, or None."""
    if v > NEWEST:
        return f"client version {text(v)} is too new. Maximum supported API version is {text(NEWEST)}"
    if v < OLDEST:
        return (f"client version {text(v)} is too old. Minimum supported API version is {text(OLDEST)}, "
                "please upgrade your client to a newer version")
    return None


# Network -------------------------------------------------------------------

def network(doc: dict[str, Any], v: Version) -> dict[str, Any]:
    """A network as a client of `v` knows it: EnableIPv4 came with API 1.47."""
    if v < (1, 47):
        doc.pop("EnableIPv4", None)
    return doc


# Container -----------------------------------------------------------------

def _endpoints(doc: dict[str, Any], v: Version, short_id: str) -> None:
    networks = (doc.get("NetworkSettings") or {}).get("Networks") or {}
    hostname = str((doc.get("Config") or {}).get("Hostname") or "")
    for ep in networks.values():
        if v < (1, 45) and ep.get("DNSNames") is not None:
            # Before 1.45 a user-defined network's aliases carried the container's short ID and its hostname.
            given = [*(ep.get("Aliases") or []), short_id, *([hostname] if hostname else [])]
            ep["Aliases"] = list(dict.fromkeys(given))
        if v < (1, 44):
            ep.pop("DNSNames", None)
        if v < (1, 48):
            ep.pop("GwPriority", None)


def container_inspect(doc: dict[str, Any], v: Version) -> dict[str, Any]:
    _endpoints(doc, v, str(doc.get("Id", ""))[:12])
    if v < (1, 42) and isinstance(doc.get("HostConfig"), dict):
        doc["HostConfig"] = {"KernelMemory": 0, **doc["HostConfig"]}  # gone with 1.42; older clients read it
    if v < (1, 20):
        return _inspect_pre_1_20(doc)
    return doc


def container_summary(doc: dict[str, Any], v: Version) -> dict[str, Any]:
    _endpoints(doc, v, str(doc.get("Id", ""))[:12])
    return doc


def _inspect_pre_1_20(doc: dict[str, Any]) -> dict[str, Any]:
    """Before 1.20 a container's mounts were two maps (destination → source, destination → writable), and the
    config carried the resource fields that moved to HostConfig."""
    out = {k: val for k, val in doc.items() if k != "Mounts"}
    mounts = doc.get("Mounts") or []
    out["Volumes"] = {m["Destination"]: m.get("Source", "") for m in mounts}
    out["VolumesRW"] = {m["Destination"]: bool(m.get("RW")) for m in mounts}
    hc = doc.get("HostConfig") or {}
    out["Config"] = {**(doc.get("Config") or {}), "Memory": hc.get("Memory") or 0,
                     "MemorySwap": hc.get("MemorySwap") or 0, "CpuShares": hc.get("CpuShares") or 0,
                     "Cpuset": hc.get("CpusetCpus") or ""}
    return out


# Images --------------------------------------------------------------------

# Fields of a container's config that image inspect showed, always empty, until 1.50.
_IMAGE_CONFIG_LEGACY: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
    "Tty": False, "OpenStdin": False, "StdinOnce": False, "Image": "",
}


def image_summary(doc: dict[str, Any], v: Version) -> dict[str, Any]:
    if v < (1, 44):
        doc["VirtualSize"] = doc.get("Size", 0)
    if v < (1, 43) and not doc.get("RepoTags") and not doc.get("RepoDigests"):
        doc["RepoTags"], doc["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
    elif v < (1, 43):
        # dockerd before 25 left a list with nothing in it out of the answer: null.
        doc["RepoTags"], doc["RepoDigests"] = doc.get("RepoTags") or None, doc.get("RepoDigests") or None
    return doc


def reads_container_config(request: web.Request) -> bool:
    """docker-compose 1.x reads an image's ContainerConfig.Volumes to recreate a container. It speaks the newest
    version the daemon names (docker-py's "auto"), where that field is gone since 1.45, and so fails with a
    KeyError against dockerd 25 and later: its requests get the field whatever their version."""
    return request.headers.get("User-Agent", "").startswith("docker-compose/1.")


def image_inspect(doc: dict[str, Any], v: Version, container_config: dict[str, Any] | None,
                  legacy_client: bool = False) -> dict[str, Any]:
    """`container_config`: what an old builder recorded of the container it committed, shown before 1.45 (and to
    a `legacy_client`)."""
    if v < (1, 44):
        doc["VirtualSize"] = doc.get("Size", 0)
    if v < (1, 45) or legacy_client:
        doc["Container"] = ""
        doc["ContainerConfig"] = {**_IMAGE_CONFIG_LEGACY, "User": "", "Env": None, "Cmd": None, "Volumes": None,
                                  "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
                                  **(container_config or {})}
    if v < (1, 50):
        doc["Config"] = {**_IMAGE_CONFIG_LEGACY, **(doc.get("Config") or {})}
    return doc


def system_df(doc: dict[str, Any], v: Version) -> dict[str, Any]:
    for image in doc.get("Images") or []:
        image_summary(image, v)
    if v < (1, 42):
        # Gone in 1.42: the build cache's total, which BuildCache's records now tell, and a record's one Parent.
        doc["BuilderSize"] = sum(int(record.get("Size") or 0) for record in doc.get("BuildCache") or [])
        for record in doc.get("BuildCache") or []:
            record["Parent"] = (record.pop("Parents", None) or [""])[0]
    return doc


# System --------------------------------------------------------------------

def info(doc: dict[str, Any], v: Version) -> dict[str, Any]:
    for field, since in (("Containerd", (1, 46)), ("FirewallBackend", (1, 49)), ("DiscoveredDevices", (1, 50)),
                         ("CDISpecDirs", (1, 44))):
        if v < since:
            doc.pop(field, None)
    if v >= (1, 42):
        doc.pop("KernelMemory", None)  # the kernel memory limit went with 1.42
    if v < (1, 25):
        # Before 1.25 security options were bare names, and clients still read the execution driver.
        doc["SecurityOptions"] = [dict(kv.split("=", 1) for kv in opt.split(",") if "=" in kv).get("name", opt)
                                  for opt in doc.get("SecurityOptions") or []]
        doc["ExecutionDriver"] = "<not supported>"
    return doc


# Requests ------------------------------------------------------------------

def update_body(body: dict[str, Any], v: Version) -> dict[str, Any]:
    """POST /containers/{id}/update: before 1.40 it had no pids limit, and dockerd drops one sent."""
    if v < (1, 40):
        body.pop("PidsLimit", None)
    return body


def prunes_named_volumes(v: Version, all_: bool) -> bool:
    """Since 1.42 volume prune leaves named volumes alone unless asked for all."""
    return all_ or v < (1, 42)
