"""Volume commands: volume create, ls, inspect, rm, prune."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

from typing import Annotated, Any

import typer

from cli.common.units import human_size
from cli.pyengine import completion as complete
from cli.pyengine.api import CLIError, path_quote, version_key
from cli.pyengine.app import (config_format, confirm, engine, for_each, inspect_each, key_values, require_api,
                              volume_app)
from cli.pyengine.formatting import Template, filters, natural_key
from cli.pyengine.gotemplate_funcs import Record

_LS_FORMAT = "table {{.Driver}}\t{{.Name}}"
_LS_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
               "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY",
               "Group": "GROUP", "Status": "STATUS"}
_ALL_WARNING = ("WARNING! This will remove all local volumes not used by at least one container.\n"
                "Are you sure you want to continue?")
_ANONYMOUS_WARNING = ("WARNING! This will remove anonymous local volumes not used by at least one container.\n"
                      "Are you sure you want to continue?")


@volume_app.command("create")
def volume_create(
    name: Annotated[str | None, typer.Argument(metavar="VOLUME", help="A name; random when not given.")] = None,
    driver: Annotated[str, typer.Option("-d", "--driver", help="Volume driver name.")] = "local",
    opt: Annotated[list[str] | None, typer.Option("-o", "--opt", help="Set a driver option KEY=VALUE.")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="Set a label KEY=VALUE.")] = None,
    cluster: Annotated[list[str] | None, typer.Option(
        "--type", "--availability", "--group", "--limit-bytes", "--required-bytes", "--scope", "--secret",
        "--sharing", "--topology-preferred", "--topology-required",
        help="Refused: cluster volumes need a swarm, which pyengined does not run.")] = None,
) -> None:
    """Create a volume."""
    if cluster:
        raise CLIError("cluster volumes (--type, --scope, --group, ...) are not supported: pyengined runs no swarm",
                       125)
    created = engine().post("/volumes/create", body={"Name": name or "", "Driver": driver,
                                                     "DriverOpts": key_values(opt), "Labels": key_values(label)})
    print(created["Name"])


def _ls_record(v: dict[str, Any]) -> Record:
    usage = v.get("UsageData")
    labels = v.get("Labels") or {}
    # Availability, Group and Status describe cluster volumes, which this daemon has none of.
    return Record("*volume.volumeContext", {
        "Name": v.get("Name", ""), "Driver": v.get("Driver", ""), "Scope": v.get("Scope", ""),
        "Mountpoint": v.get("Mountpoint", ""), "Labels": ",".join(sorted(f"{k}={val}" for k, val in labels.items())),
        "Links": "N/A" if usage is None else str(usage.get("RefCount", 0)),
        "Size": "N/A" if usage is None else human_size(usage.get("Size", 0)),
        "Availability": "N/A", "Group": "N/A", "Status": "N/A",
    }, {"Label": lambda name: labels.get(name, "")})


@volume_app.command("list", hidden=True)  # docker's alias
@volume_app.command("ls")
def volume_ls(
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only display volume names.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("-f", "--filter", help="Filter KEY=VALUE (repeatable).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="Go-template-like format, or 'table ...'.")] = None,
    cluster: Annotated[bool, typer.Option("--cluster", help="Refused: pyengined runs no swarm.")] = False,
) -> None:
    """List volumes."""
    if cluster:
        raise CLIError("--cluster is not supported: pyengined runs no swarm", 125)
    found = engine().get("/volumes", {"filters": filters(filter_)}).get("Volumes") or []
    rows = [_ls_record(v) for v in sorted(found, key=lambda v: natural_key(v.get("Name", "")))]
    spec = format_ or config_format("volumesFormat")
    if quiet or spec in (None, "", "table"):
        spec = "{{.Name}}" if quiet else _LS_FORMAT
    print(Template(spec).lines(rows, _LS_HEADERS), end="")


@volume_app.command("inspect")
def volume_inspect(
    names: Annotated[list[str], typer.Argument(metavar="VOLUME", autocompletion=complete.volumes)],
    format_: Annotated[str | None, typer.Option("-f", "--format", help="Go-template-like format.")] = None,
) -> None:
    """Display detailed information on one or more volumes."""
    e = engine()
    inspect_each(names, lambda name: e.get(f"/volumes/{path_quote(name)}"), format_)


@volume_app.command("remove", hidden=True)  # docker's alias
@volume_app.command("rm")
def volume_rm(
    names: Annotated[list[str], typer.Argument(metavar="VOLUME", autocompletion=complete.volumes)],
    force: Annotated[bool, typer.Option("-f", "--force", help="Do not error if the volume does not exist.")]
    = False,
) -> None:
    """Remove one or more volumes."""
    e = engine()

    def remove(name: str) -> None:
        e.call("DELETE", f"/volumes/{path_quote(name)}", {"force": 1 if force else None})
        print(name)

    for_each(names, remove)


@volume_app.command("prune")
def volume_prune(
    force: Annotated[bool, typer.Option("-f", "--force", help="Do not prompt for confirmation.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="Filter KEY=VALUE (e.g. label=x).")] = None,
    all_: Annotated[bool, typer.Option("-a", "--all", help="Remove all unused volumes, not just anonymous ones.")]
    = False,
) -> None:
    """Remove unused local volumes (anonymous ones only, unless -a)."""
    e = engine()
    given = list(filter_ or [])
    if all_:
        require_api("--all", "1.42")
    # API 1.42 narrowed prune to anonymous volumes; before it, every unused volume goes.
    if version_key(e.version) >= (1, 42):
        warning = _ALL_WARNING if all_ else _ANONYMOUS_WARNING
        if all_:
            if any(f.partition("=")[0].strip().lower() == "all" for f in given):
                raise CLIError("conflicting options: cannot specify both --all and --filter all=1", 125)
            given.append("all=true")
    else:
        warning = _ALL_WARNING
    reclaimed = 0
    if force or confirm(warning):
        report = e.post("/volumes/prune", {"filters": filters(given)})
        deleted = report.get("VolumesDeleted") or []
        if deleted:
            print("Deleted Volumes:\n" + "".join(name + "\n" for name in deleted))
            reclaimed = report.get("SpaceReclaimed") or 0
    print(f"Total reclaimed space: {human_size(reclaimed)}")
