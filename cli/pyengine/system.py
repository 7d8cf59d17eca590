"""Daemon-wide commands: version, info, system df, events, inspect."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import sys
from typing import Annotated, Any

import typer

from cli.common.units import binary_size, human_size
from cli.pyengine import completion as complete
from cli.pyengine import versioncmd
from cli.pyengine.api import CLIError, DaemonError, path_quote
from cli.pyengine.app import app, engine, inspect_each, system_app
from cli.pyengine.formatting import Template, filters, rfc3339_nano, tabulate, timestamp

_FORMAT_HELP = "Go-template-like format."


@app.command()
def version(
    format_: Annotated[str | None, typer.Option("-f", "--format", help=_FORMAT_HELP)] = None,
) -> None:
    """Show the pyengine version information."""
    versioncmd.show(engine, format_)


@app.command()
def info(
    format_: Annotated[str | None, typer.Option("-f", "--format", help=_FORMAT_HELP)] = None,
) -> None:
    """Display system-wide information."""
    i = engine().get("/info")
    if format_:
        print(Template(format_).render(i))
        return
    print("Server:")
    versioncmd.fields(" ", [("Containers", i.get("Containers"))])
    versioncmd.fields("  ", [("Running", i.get("ContainersRunning")), ("Paused", i.get("ContainersPaused")),
                   ("Stopped", i.get("ContainersStopped"))])
    versioncmd.fields(" ", [
        ("Images", i.get("Images")), ("Server Version", i.get("ServerVersion")),
        ("Storage Driver", i.get("Driver")), ("Logging Driver", i.get("LoggingDriver")),
        ("Cgroup Driver", i.get("CgroupDriver")), ("Cgroup Version", i.get("CgroupVersion")),
        ("Default Runtime", i.get("DefaultRuntime")), ("Init Binary", i.get("InitBinary")),
        ("Kernel Version", i.get("KernelVersion")), ("Operating System", i.get("OperatingSystem")),
        ("OSType", i.get("OSType")), ("Architecture", i.get("Architecture")), ("CPUs", i.get("NCPU")),
        ("Total Memory", binary_size(i.get("MemTotal") or 0)), ("Name", i.get("Name")), ("ID", i.get("ID")),
        ("Docker Root Dir", i.get("DockerRootDir")), ("Debug Mode", str(bool(i.get("Debug"))).lower()),
        ("Live Restore Enabled", str(bool(i.get("LiveRestoreEnabled"))).lower()),
    ])
    mirrors = ((i.get("RegistryConfig") or {}).get("Mirrors")) or []
    if mirrors:
        print(" Registry Mirrors:")
        for m in mirrors:
            print(f"  {m}")
    for warning in i.get("Warnings") or []:
        print(warning, file=sys.stderr)


def _reclaimable(reclaimable: int, total: int) -> str:
    text = human_size(reclaimable)
    return f"{text} ({reclaimable * 100 // total}%)" if total > 0 else text


@system_app.command("df")
def system_df() -> None:
    """Show pyengine disk usage."""
    df = engine().get("/system/df")
    images, containers = df.get("Images") or [], df.get("Containers") or []
    volumes, cache = df.get("Volumes") or [], df.get("BuildCache") or []
    layers = df.get("LayersSize") or 0
    used = sum(i.get("Size", 0) - max(i.get("SharedSize", 0), 0) for i in images if i.get("Containers", 0) > 0)
    active_states = ("running", "paused", "restarting")
    c_size = sum(c.get("SizeRw", 0) for c in containers)
    c_free = sum(c.get("SizeRw", 0) for c in containers if c.get("State") not in active_states)
    v_sizes = [((v.get("UsageData") or {}).get("Size", -1), (v.get("UsageData") or {}).get("RefCount", 0))
               for v in volumes]
    v_size = sum(s for s, _ in v_sizes if s > 0)
    v_free = sum(s for s, refs in v_sizes if s > 0 and refs == 0)
    cache_size = sum(b.get("Size", 0) for b in cache)
    lines = ["TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE",
             f"Images\t{len(images)}\t{sum(1 for i in images if i.get('Containers', 0) > 0)}\t"
             f"{human_size(layers)}\t{_reclaimable(layers - used, layers)}",
             f"Containers\t{len(containers)}\t{sum(1 for c in containers if c.get('State') in active_states)}\t"
             f"{human_size(c_size)}\t{_reclaimable(c_free, c_size)}",
             f"Local Volumes\t{len(volumes)}\t{sum(1 for _, refs in v_sizes if refs > 0)}\t"
             f"{human_size(v_size)}\t{_reclaimable(v_free, v_size)}",
             f"Build Cache\t{len(cache)}\t{sum(1 for b in cache if b.get('InUse'))}\t{human_size(cache_size)}\t"
             f"{human_size(sum(b.get('Size', 0) for b in cache if not b.get('InUse')))}"]
    print(tabulate("".join(line + "\n" for line in lines)), end="")


@app.command()
def events(
    since: Annotated[str | None, typer.Option("--since", help="Since a timestamp or relative (10m).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until a timestamp or relative (10m).")] = None,
    filter_: Annotated[list[str] | None, typer.Option("-f", "--filter", help="Filter KEY=VALUE (repeatable).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help=_FORMAT_HELP)] = None,
) -> None:
    """Get real-time events from the daemon."""
    template = Template(format_) if format_ else None
    stream = engine().json_stream("GET", "/events", {"since": since and timestamp(since),
                                                     "until": until and timestamp(until),
                                                     "filters": filters(filter_)})
    for event in stream:
        if template is not None:
            print(template.render(event), flush=True)
            continue
        actor = event.get("Actor") or {}
        attributes = ", ".join(f"{k}={v}" for k, v in sorted((actor.get("Attributes") or {}).items()))
        ns = event.get("timeNano") or event.get("time", 0) * 1_000_000_000
        line = f"{rfc3339_nano(ns)} {event.get('Type')} {event.get('Action')} {actor.get('ID', '')}"
        print(f"{line} ({attributes})" if attributes else line, flush=True)


# In docker's order for a name of no given type.
_INSPECT_PATHS = {"container": "/containers/{}/json", "image": "/images/{}/json", "network": "/networks/{}",
                  "volume": "/volumes/{}"}


def _inspect_one(name: str, kind: str | None) -> Any:
    e = engine()
    if kind is not None:
        return e.get(_INSPECT_PATHS[kind].format(path_quote(name)))
    for path in _INSPECT_PATHS.values():
        try:
            return e.get(path.format(path_quote(name)))
        except DaemonError as err:
            if err.status != 404:
                raise
    raise CLIError(f"Error: No such object: {name}")


@app.command()
def inspect(
    names: Annotated[list[str], typer.Argument(metavar="NAME|ID", autocompletion=complete.objects)],
    format_: Annotated[str | None, typer.Option("-f", "--format", help=_FORMAT_HELP)] = None,
    type_: Annotated[str | None, typer.Option("--type", help="container, image, network or volume.")] = None,
) -> None:
    """Return low-level information on containers, images, networks or volumes."""
    if type_ is not None and type_ not in _INSPECT_PATHS:
        raise CLIError(f'"{type_}" is not a valid value for --type', 125)
    inspect_each(names, lambda name: _inspect_one(name, type_), format_)
