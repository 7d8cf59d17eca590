"""Volume commands: volume create, ls, inspect, rm, prune."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

from typing import Annotated, Any

import typer

from cli.common.units import human_size
from cli.pyengine.api import path_quote
from cli.pyengine.app import confirm, engine, for_each, inspect_each, key_values, volume_app
from cli.pyengine.formatting import Template, filters, natural_key

_LS_FORMAT = "table {{.Driver}}\t{{.Name}}"
_LS_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
               "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"}
# API 1.41 prunes every unused volume, named ones too (1.42 narrowed it to anonymous ones).
_PRUNE_WARNING = ("WARNING! This will remove all local volumes not used by at least one container.\n"
                  "Are you sure you want to continue?")


@volume_app.command("create")
def volume_create(
    name: Annotated[str | None, typer.Argument(metavar="VOLUME", help="A name; random when not given.")] = None,
    driver: Annotated[str, typer.Option("-d", "--driver", help="Volume driver name.")] = "local",
    opt: Annotated[list[str] | None, typer.Option("-o", "--opt", help="Set a driver option KEY=VALUE.")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="Set a label KEY=VALUE.")] = None,
) -> None:
    """Create a volume."""
    created = engine().post("/volumes/create", body={"Name": name or "", "Driver": driver,
                                                     "DriverOpts": key_values(opt), "Labels": key_values(label)})
    print(created["Name"])


def _ls_fields(v: dict[str, Any]) -> dict[str, str]:
    usage = v.get("UsageData")
    return {
        "Name": v.get("Name", ""), "Driver": v.get("Driver", ""), "Scope": v.get("Scope", ""),
        "Mountpoint": v.get("Mountpoint", ""),
        "Labels": ",".join(f"{k}={val}" for k, val in (v.get("Labels") or {}).items()),
        "Links": "N/A" if usage is None else str(usage.get("RefCount", 0)),
        "Size": "N/A" if usage is None else human_size(usage.get("Size", 0)),
    }


@volume_app.command("ls")
def volume_ls(
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only display volume names.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("-f", "--filter", help="Filter KEY=VALUE (repeatable).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="Go-template-like format, or 'table ...'.")] = None,
) -> None:
    """List volumes."""
    found = engine().get("/volumes", {"filters": filters(filter_)}).get("Volumes") or []
    rows = [_ls_fields(v) for v in sorted(found, key=lambda v: natural_key(v.get("Name", "")))]
    if quiet:
        print("".join(r["Name"] + "\n" for r in rows), end="")
        return
    print(Template(format_ or _LS_FORMAT).lines(rows, _LS_HEADERS), end="")


@volume_app.command("inspect")
def volume_inspect(
    names: Annotated[list[str], typer.Argument(metavar="VOLUME")],
    format_: Annotated[str | None, typer.Option("-f", "--format", help="Go-template-like format.")] = None,
) -> None:
    """Display detailed information on one or more volumes."""
    e = engine()
    inspect_each(names, lambda name: e.get(f"/volumes/{path_quote(name)}"), format_)


@volume_app.command("rm")
def volume_rm(
    names: Annotated[list[str], typer.Argument(metavar="VOLUME")],
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
) -> None:
    """Remove all unused local volumes."""
    reclaimed = 0
    if force or confirm(_PRUNE_WARNING):
        report = engine().post("/volumes/prune", {"filters": filters(filter_)})
        deleted = report.get("VolumesDeleted") or []
        if deleted:
            print("Deleted Volumes:\n" + "".join(name + "\n" for name in deleted))
            reclaimed = report.get("SpaceReclaimed") or 0
    print(f"Total reclaimed space: {human_size(reclaimed)}")
