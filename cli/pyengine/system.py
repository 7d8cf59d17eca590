"""Daemon-wide commands: version, info, system df, events, inspect."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import sys
from typing import Annotated, Any

import typer

from cli.common.units import binary_size
from cli.pyengine import completion as complete
from cli.pyengine import clilog, contexts, diskusage, versioncmd  # noqa: F401  (diskusage registers `system df`)
from cli.pyengine.api import CLIError, DaemonError, path_quote
from cli.pyengine.app import app, engine, inspect_each
from cli.pyengine.formatting import Template, filters, rfc3339_nano, timestamp
from cli.pyengine.gotemplate_funcs import GoFields

_FORMAT_HELP = "Go-template-like format."
# docker's events.Message: the Go names of its lower-case JSON keys, and their zero values when left out.
_EVENT_GO_NAMES = {"Status": "status", "ID": "id", "From": "from", "Scope": "scope", "Time": "time",
                   "TimeNano": "timeNano"}
_EVENT_ZEROS = {"Status": "", "ID": "", "From": "", "Scope": "", "Time": 0, "TimeNano": 0}
# The Go field names of docker's system.Info that differ from their JSON keys.
_INFO_GO_NAMES = {"HTTPProxy": "HttpProxy", "HTTPSProxy": "HttpsProxy", "CPUCfsPeriod": "CpuCfsPeriod",
                  "CPUCfsQuota": "CpuCfsQuota", "BridgeNfIP6tables": "BridgeNfIp6tables"}


@app.command()
def version(
    format_: Annotated[str | None, typer.Option("-f", "--format", help=_FORMAT_HELP)] = None,
) -> None:
    """Show the pyengine version information."""
    versioncmd.show(engine, format_, contexts.current())


@app.command()
def info(
    format_: Annotated[str | None, typer.Option("-f", "--format", help=_FORMAT_HELP)] = None,
) -> None:
    """Display system-wide information."""
    debug = clilog.level() in ("debug", "trace")
    client = {"Debug": debug, **versioncmd.client_version(contexts.current()), "Plugins": [], "Warnings": None}
    if format_:
        # docker's info struct: the daemon's, with the client's beside it; both by Go names.
        print(Template(format_).render(GoFields({**engine().get("/info"), "ClientInfo": GoFields(
            client, versioncmd.GO_NAMES)}, _INFO_GO_NAMES)))
        return
    print("Client:")
    versioncmd.fields(" ", [("Version", client["Version"]), ("Context", client["Context"]),
                            ("Debug Mode", str(debug).lower())])
    print()
    sys.stdout.flush()
    i = engine().get("/info")
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


@app.command()
def events(
    since: Annotated[str | None, typer.Option("--since", help="Since a timestamp or relative (10m).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until a timestamp or relative (10m).")] = None,
    filter_: Annotated[list[str] | None, typer.Option("-f", "--filter", help="Filter KEY=VALUE (repeatable).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help=_FORMAT_HELP)] = None,
) -> None:
    """Get real-time events from the daemon."""
    # As docker: the template is taken as given (`table` is text here); `json` alone is `{{json .}}`.
    template = Template(format_, verbatim=True) if format_ else None
    stream = engine().json_stream("GET", "/events", {"since": since and timestamp(since),
                                                     "until": until and timestamp(until),
                                                     "filters": filters(filter_)})
    for event in stream:
        if template is not None:
            print(template.render(GoFields(event, _EVENT_GO_NAMES, _EVENT_ZEROS)), flush=True)
            continue
        actor = event.get("Actor") or {}
        attributes = ", ".join(f"{k}={v}" for k, v in sorted((actor.get("Attributes") or {}).items()))
        ns = event.get("timeNano") or event.get("time", 0) * 1_000_000_000
        line = f"{rfc3339_nano(ns)} {event.get('Type')} {event.get('Action')} {actor.get('ID', '')}"
        print(f"{line} ({attributes})" if attributes else line, flush=True)


# What docker's --type takes (the swarm and plugin kinds, which pyengined has none of, included).
_DOCKER_TYPES = '", "'.join(("config", "container", "image", "network", "node", "plugin", "secret", "service", "task",
                             "volume"))
# In docker's order for a name of no given type.
_INSPECT_PATHS = {"container": "/containers/{}/json", "image": "/images/{}/json", "network": "/networks/{}",
                  "volume": "/volumes/{}"}


def _inspect_one(name: str, kind: str | None, size: bool) -> Any:
    e = engine()
    # As docker: --size asks a container for its sizes, and the other kinds ignore it.
    query = {"size": 1 if size else None}
    if kind is not None:
        return e.get(_INSPECT_PATHS[kind].format(path_quote(name)), query if kind == "container" else None)
    for kind_, path in _INSPECT_PATHS.items():
        try:
            return e.get(path.format(path_quote(name)), query if kind_ == "container" else None)
        except DaemonError as err:
            if err.status != 404:
                raise
    raise CLIError(f"Error: No such object: {name}")


@app.command()
def inspect(
    names: Annotated[list[str], typer.Argument(metavar="NAME|ID", autocompletion=complete.objects)],
    format_: Annotated[str | None, typer.Option("-f", "--format", help=_FORMAT_HELP)] = None,
    type_: Annotated[str | None, typer.Option("--type", help="container, image, network or volume.")] = None,
    size: Annotated[bool, typer.Option("-s", "--size", help="Display total file sizes if the type is container."
                                       )] = False,
) -> None:
    """Return low-level information on containers, images, networks or volumes."""
    if type_ is not None and type_ not in _INSPECT_PATHS:
        raise CLIError(f'unknown type: "{type_}": must be one of "{_DOCKER_TYPES}"')
    inspect_each(names, lambda name: _inspect_one(name, type_, size), format_)
