"""docker ps: the list of containers, its formatter context and its PORTS column."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import json
import sys
from typing import Annotated, Any

import typer

from cli.common.units import human_size
from cli.pyengine.api import CLIError
from cli.pyengine.app import app, config_format, engine
from cli.pyengine.containers import join_host_port
from cli.pyengine.formatting import Template, ago, filters, local_time
from cli.pyengine.gotemplate_funcs import Record

_PS_FORMAT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
_PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
               "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
               "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
               "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM"}


def _displayable_ports(ports: list[dict[str, Any]]) -> str:
    """docker ps's PORTS: consecutive ports on the same address and protocol are grouped (80-81/tcp,
    0.0.0.0:80-81->80-81/tcp when published on the same numbers), other published ports follow one by one."""
    groups: dict[str, list[int]] = {}  # "[ip/]proto" → [first, last], in the order first seen
    result, mappings = [], []

    def group(key: str, first: int, last: int) -> str:
        ip, _, proto = key.rpartition("/")
        numbers = str(first) if first == last else f"{first}-{last}"
        return f"{ip}:{numbers}->{numbers}/{proto}" if ip else f"{numbers}/{proto}"

    for p in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""), p.get("PublicPort", 0),
                                          p.get("Type", ""))):
        private, ip, proto = p.get("PrivatePort", 0), p.get("IP", ""), p.get("Type", "")
        key = proto
        if ip:
            if p.get("PublicPort", 0) != private:
                mappings.append(f"{join_host_port(ip, p.get('PublicPort', 0))}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        span = groups.get(key)
        if span is None:
            groups[key] = [private, private]
        elif private == span[1] + 1:
            span[1] = private
        else:
            result.append(group(key, *span))
            groups[key] = [private, private]
    result += [group(key, *span) for key, span in groups.items()]
    return ", ".join(result + mappings)


def _ps_record(c: dict[str, Any], trunc: bool) -> Record:
    """docker ps's formatter context for one container (its fields, its `.Label "key"`)."""
    command = c.get("Command") or ""
    if trunc and len(command) > 20:
        command = command[:19] + "…"
    image = c.get("Image") or "<no image>"
    if trunc:
        if image.removeprefix("sha256:")[:12] == (c.get("ImageID") or "").removeprefix("sha256:")[:12]:
            image = image.removeprefix("sha256:")[:12]
        elif "@" in image:
            image = image.split("@", 1)[0]
    names = [n.removeprefix("/") for n in c.get("Names") or []]
    if trunc:
        # Names with a second slash are legacy links to other containers.
        names = [n for n in names if "/" not in n][:1]
    labels = c.get("Labels") or {}
    mounts = [m.get("Name") or m.get("Source", "") for m in c.get("Mounts") or []]
    size_rw, size_root = c.get("SizeRw") or 0, c.get("SizeRootFs") or 0
    return Record("*formatter.ContainerContext", {
        "ID": c["Id"][:12] if trunc else c["Id"], "Image": image,
        "Command": json.dumps(command, ensure_ascii=False), "CreatedAt": local_time(c.get("Created", 0)),
        "RunningFor": ago(c.get("Created", 0)), "Ports": _displayable_ports(c.get("Ports") or []),
        "State": c.get("State", ""), "Status": c.get("Status", ""), "Names": ",".join(names),
        "Labels": ",".join(sorted(f"{k}={v}" for k, v in labels.items())),
        "Mounts": ",".join(m[:14] + "…" if trunc and len(m) > 15 else m for m in mounts),
        "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
        "Networks": ",".join(sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}))),
        "Size": human_size(size_rw, 3) + (f" (virtual {human_size(size_root, 3)})" if size_root > 0 else ""),
        "Platform": None,
    }, {"Label": lambda name: labels.get(name, "")})


def _ps_wants_size(spec: str) -> bool:
    """As docker ps: a template that uses .Size (or all fields, {{json .}}) asks the daemon for sizes; the
    template is tried on an empty container first, so that a broken one fails before any request."""
    probe = _ps_record({"Id": ""}, True)
    if spec == "json":
        return False  # docker tries the word itself, which uses no field
    try:
        template = Template(spec)
    except CLIError as e:
        raise CLIError(e.message.replace("template parsing error", "failed to parse template", 1)) from None
    try:
        template.render(probe)
    except CLIError as e:
        raise CLIError(e.message.replace("template parsing error", "failed to execute template", 1)) from None
    return "Size" in probe.used


@app.command()
def ps(
    all_: Annotated[bool, typer.Option("-a", "--all", help="Show all containers, not only running ones.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only show container IDs.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("-f", "--filter", help="Filter KEY=VALUE (repeatable).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="Go template, 'table TEMPLATE' or 'json'.")] = None,
    last: Annotated[int, typer.Option("-n", "--last", help="Show the n last created containers.")] = -1,
    latest: Annotated[bool, typer.Option("-l", "--latest", help="Show the latest created container.")] = False,
    size: Annotated[bool, typer.Option("-s", "--size", help="Show sizes.")] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
) -> None:
    """List containers."""
    spec = format_ or config_format("psFormat")
    if quiet and format_:
        print("WARNING: Ignoring custom format, because both --format and --quiet are set.", file=sys.stderr)
    if quiet or spec in (None, "", "table"):
        spec = "{{.ID}}" if quiet else _PS_FORMAT + ("\t{{.Size}}" if size else "")
    elif not size and not quiet:
        size = _ps_wants_size(spec)
    limit = 1 if latest else last
    containers = engine().get("/containers/json", {"all": 1 if all_ else None, "filters": filters(filter_),
                                                   "limit": limit if limit > 0 else None,
                                                   "size": 1 if size else None})
    rows = [_ps_record(c, not no_trunc) for c in containers]
    print(Template(spec).lines(rows, _PS_HEADERS), end="")


