"""The prune commands: system prune, and container, image and builder prune (registered in groups.py).

Each asks docker's question unless -f (only y is a yes; a no ends quietly with exit 0), prints docker's
report of what went and `Total reclaimed space:`.
"""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import json
from typing import Annotated, Any, Callable

import typer

from cli.common.units import human_size
from cli.pyengine.api import CLIError
from cli.pyengine.app import confirm, engine, system_app
from cli.pyengine.formatting import filters

_ASK = "Are you sure you want to continue?"
_Force = Annotated[bool, typer.Option("-f", "--force", help="Do not prompt for confirmation.")]
_Filter = Annotated[list[str] | None, typer.Option("--filter", help="Provide filter values (e.g. until=<timestamp>).")]

# A pruner: what it reclaimed (bytes) and its report (empty when nothing went).
Pruner = Callable[[bool, str | None], tuple[int, str]]


def _section(title: str, lines: list[str]) -> str:
    return f"{title}:\n" + "".join(line + "\n" for line in lines) if lines else ""


def _with(filter_json: str | None, **extra: bool) -> str | None:
    """The --filter JSON with filters of the command's own (image prune's dangling) added."""
    if not extra:
        return filter_json
    merged: dict[str, Any] = json.loads(filter_json) if filter_json else {}
    for key, value in extra.items():
        merged[key] = {str(value).lower(): True}
    return json.dumps(merged)


def prune_containers(_all: bool, filter_json: str | None) -> tuple[int, str]:
    report = engine().post("/containers/prune", {"filters": filter_json}) or {}
    return report.get("SpaceReclaimed") or 0, _section("Deleted Containers", report.get("ContainersDeleted") or [])


def prune_networks(_all: bool, filter_json: str | None) -> tuple[int, str]:
    report = engine().post("/networks/prune", {"filters": filter_json}) or {}
    return 0, _section("Deleted Networks", report.get("NetworksDeleted") or [])


def prune_volumes(_all: bool, filter_json: str | None) -> tuple[int, str]:
    report = engine().post("/volumes/prune", {"filters": filter_json}) or {}
    return report.get("SpaceReclaimed") or 0, _section("Deleted Volumes", report.get("VolumesDeleted") or [])


def prune_images(all_: bool, filter_json: str | None) -> tuple[int, str]:
    report = engine().post("/images/prune", {"filters": _with(filter_json, dangling=not all_)}) or {}
    lines = [f"{key.lower()}: {item[key]}" for item in report.get("ImagesDeleted") or []
             for key in ("Untagged", "Deleted") if item.get(key)]
    return report.get("SpaceReclaimed") or 0, _section("Deleted Images", lines)


def prune_build_cache(all_: bool, filter_json: str | None, keep_storage: int | None = None) -> tuple[int, str]:
    report = engine().post("/build/prune", {"all": 1 if all_ else None, "filters": filter_json,
                                            "keep-storage": keep_storage}) or {}
    return report.get("SpaceReclaimed") or 0, _section("Deleted build cache objects", report.get("CachesDeleted") or [])


def _run(warning: str, force: bool, pruners: list[Pruner], all_: bool, filter_: list[str] | None) -> None:
    filter_json = filters(filter_)
    if not force and not confirm(warning):
        return
    reclaimed = 0
    for pruner in pruners:
        space, report = pruner(all_, filter_json)
        reclaimed += space
        if report:
            print(report)
    print(f"Total reclaimed space: {human_size(reclaimed)}")


@system_app.command("prune")
def system_prune(
    all_: Annotated[bool, typer.Option("-a", "--all", help="Remove all unused images not just dangling ones.")]
    = False,
    force: _Force = False,
    filter_: _Filter = None,
    volumes: Annotated[bool, typer.Option("--volumes", help="Prune volumes.")] = False,
) -> None:
    """Remove unused data."""
    if volumes and any(f.partition("=")[0] == "until" for f in filter_ or []):
        raise CLIError('ERROR: The "until" filter is not supported with "--volumes"')
    # API 1.42 and later (what this CLI speaks) prune only anonymous volumes here, as docker's does.
    items = ["all stopped containers", "all networks not used by at least one container"]
    items += ["all anonymous volumes not used by at least one container"] if volumes else []
    items += ["all images without at least one container associated to them" if all_ else "all dangling images"]
    items += ["all build cache" if all_ else "unused build cache"]
    warning = "WARNING! This will remove:\n" + "".join(f"  - {item}\n" for item in items) + "\n"
    if filter_:
        warning += "  Items to be pruned will be filtered with:\n" + "".join(
            f"  - {f}\n" for f in sorted(filter_)) + "\n"
    pruners: list[Pruner] = [prune_containers, prune_networks, *([prune_volumes] if volumes else []),
                             prune_images, prune_build_cache]
    _run(warning + _ASK, force, pruners, all_, filter_)


def container_prune(force: _Force = False, filter_: _Filter = None) -> None:
    """Remove all stopped containers."""
    _run(f"WARNING! This will remove all stopped containers.\n{_ASK}", force, [prune_containers], False, filter_)


def image_prune(
    all_: Annotated[bool, typer.Option("-a", "--all", help="Remove all unused images, not just dangling ones.")]
    = False,
    force: _Force = False,
    filter_: _Filter = None,
) -> None:
    """Remove unused images."""
    what = "all images without at least one container associated to them" if all_ else "all dangling images"
    _run(f"WARNING! This will remove {what}.\n{_ASK}", force, [prune_images], all_, filter_)


def builder_prune(
    all_: Annotated[bool, typer.Option("-a", "--all", help="Remove all unused build cache, not just dangling ones.")]
    = False,
    force: _Force = False,
    filter_: _Filter = None,
    keep_storage: Annotated[str | None, typer.Option(
        "--keep-storage", metavar="BYTES", help="Amount of disk space to keep for cache.")] = None,
) -> None:
    """Remove build cache."""
    from functools import partial

    from cli.pyengine.runopts import ram_in_bytes

    try:
        keep = ram_in_bytes(keep_storage) if keep_storage else None
    except ValueError:
        raise CLIError(f'invalid argument "{keep_storage}" for "--keep-storage" flag: invalid size: '
                       f"'{keep_storage}'", 125) from None
    what = "all build cache" if all_ else "all dangling build cache"
    _run(f"WARNING! This will remove {what}. {_ASK}", force, [partial(prune_build_cache, keep_storage=keep)], all_,
         filter_)
