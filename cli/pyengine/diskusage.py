"""`system df`: the daemon's disk usage as docker prints it, summed up (a row a kind, --format over each)
or, with -v, item by item (images, containers, local volumes, build cache)."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import datetime
import re
import time
from typing import Annotated, Any

import typer

from cli.common.units import human_duration, human_size
from cli.pyengine.app import engine, system_app
from cli.pyengine.formatting import Template
from cli.pyengine.gotemplate_funcs import Record

_SUMMARY_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
_SUMMARY_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                    "Reclaimable": "RECLAIMABLE"}
_IMAGES_FORMAT = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t"
                  "{{.UniqueSize}}\t{{.Containers}}")
_CONTAINERS_FORMAT = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t"
                      "{{.Status}}\t{{.Names}}")
_VOLUMES_FORMAT = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
_CACHE_FORMAT = ("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t"
                 "{{.UsageCount}}\t{{.Shared}}")
_CACHE_HEADERS = {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
                  "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}
_ACTIVE_STATES = ("running", "paused", "restarting")


def _reclaimable(reclaimable: int, total: int) -> str:
    text = human_size(reclaimable)
    return f"{text} ({reclaimable * 100 // total}%)" if total > 0 else text


def _summary_row(type_name: str, kind: str, total: int, active: int, size: str, reclaimable: str) -> Record:
    return Record(f"*formatter.diskUsage{type_name}Context", {
        "Type": kind, "TotalCount": str(total), "Active": str(active), "Size": size, "Reclaimable": reclaimable})


def _summary(df: dict[str, Any]) -> list[Record]:
    images, containers = df.get("Images") or [], df.get("Containers") or []
    volumes, cache = df.get("Volumes") or [], df.get("BuildCache") or []
    layers = df.get("LayersSize") or 0
    used = sum(i.get("Size", 0) - max(i.get("SharedSize", 0), 0) for i in images if i.get("Containers", 0) > 0)
    c_size = sum(c.get("SizeRw", 0) for c in containers)
    c_free = sum(c.get("SizeRw", 0) for c in containers if c.get("State") not in _ACTIVE_STATES)
    v_sizes = [((v.get("UsageData") or {}).get("Size", -1), (v.get("UsageData") or {}).get("RefCount", 0))
               for v in volumes]
    v_size = sum(s for s, _ in v_sizes if s > 0)
    v_free = sum(s for s, refs in v_sizes if s > 0 and refs == 0)
    # As docker: a record shared with another counts once, under the record that owns it.
    cache_size = sum(b.get("Size", 0) for b in cache if not b.get("Shared"))
    cache_free = sum(b.get("Size", 0) for b in cache if not b.get("Shared") and not b.get("InUse"))
    return [
        _summary_row("Images", "Images", len(images), sum(1 for i in images if i.get("Containers", 0) > 0),
                     human_size(layers), _reclaimable(layers - used, layers)),
        _summary_row("Containers", "Containers", len(containers),
                     sum(1 for c in containers if c.get("State") in _ACTIVE_STATES), human_size(c_size),
                     _reclaimable(c_free, c_size)),
        _summary_row("Volumes", "Local Volumes", len(volumes), sum(1 for _, refs in v_sizes if refs > 0),
                     human_size(v_size), _reclaimable(v_free, v_size)),
        _summary_row("Builder", "Build Cache", len(cache), sum(1 for b in cache if b.get("InUse")),
                     human_size(cache_size), human_size(cache_free)),
    ]


def _since(rfc3339: str | None) -> str:
    if not rfc3339:
        return ""
    # Python's parser takes microseconds at most; the API gives nanoseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", rfc3339).replace("Z", "+00:00")
    try:
        at = datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return ""
    return f"{human_duration(time.time() - at)} ago"


def _cache_record(b: dict[str, Any], trunc: bool) -> Record:
    cache_id = str(b.get("ID", ""))[:12] if trunc else str(b.get("ID", ""))
    return Record("*formatter.buildCacheContext", {
        "ID": cache_id + "*" if b.get("InUse") else cache_id, "CacheType": b.get("Type", ""),
        "Size": human_size(b.get("Size", 0), 3), "CreatedSince": _since(b.get("CreatedAt")),
        "LastUsedSince": _since(b.get("LastUsedAt")), "UsageCount": str(b.get("UsageCount", 0)),
        "Shared": "true" if b.get("Shared") else "false"})


def _verbose(df: dict[str, Any], format_: str | None) -> None:
    # The list commands' formatter contexts, which docker's verbose df reuses.
    from cli.pyengine.images import _IMAGES_HEADERS, _image_rows
    from cli.pyengine.ps import _PS_HEADERS, _ps_record
    from cli.pyengine.volumes import _LS_HEADERS, _ls_record

    # IDs are cut short in tables only; an image is one row, under its first name.
    trunc = format_ in (None, "", "table") or format_.startswith("table")
    images = []
    for summary in df.get("Images") or []:
        names = [t for t in summary.get("RepoTags") or [] if t != "<none>:<none>"]
        row = _image_rows({**summary, "RepoTags": names[:1], "RepoDigests": []}, trunc, False)[0]
        row.fields["Digest"] = ""
        images.append(row)
    containers = []
    for c in df.get("Containers") or []:
        record = _ps_record(c, trunc)
        # docker's df shows the writable layer alone.
        record.fields["Size"] = human_size(c.get("SizeRw") or 0, 3)
        containers.append(record)
    volumes = [_ls_record(v) for v in df.get("Volumes") or []]
    cache = [_cache_record(b, trunc) for b in df.get("BuildCache") or []]
    if format_ not in (None, "", "table"):
        context = Record("*formatter.diskUsageContext", {"Images": images, "Containers": containers,
                                                          "Volumes": volumes, "BuildCache": cache})
        # Rendered once, and printed without a newline after it, as docker does.
        print(Template(format_).render(context), end="")
        return
    cache_size = sum(b.get("Size", 0) for b in df.get("BuildCache") or [] if not b.get("Shared"))
    print("Images space usage:\n\n" + Template(_IMAGES_FORMAT).lines(images, _IMAGES_HEADERS)
          + "\nContainers space usage:\n\n" + Template(_CONTAINERS_FORMAT).lines(containers, _PS_HEADERS)
          + "\nLocal Volumes space usage:\n\n" + Template(_VOLUMES_FORMAT).lines(volumes, _LS_HEADERS)
          + f"\nBuild cache usage: {human_size(cache_size)}\n\n"
          + Template(_CACHE_FORMAT).lines(cache, _CACHE_HEADERS), end="")


@system_app.command("df")
def system_df(
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Show detailed information on space usage.")]
    = False,
    format_: Annotated[str | None, typer.Option("--format", help="Go template, 'table TEMPLATE' or 'json'.")]
    = None,
) -> None:
    """Show pyengine disk usage."""
    df = engine().get("/system/df")
    if verbose:
        _verbose(df, format_)
        return
    spec = _SUMMARY_FORMAT if format_ in (None, "", "table") else format_
    print(Template(spec).lines(_summary(df), _SUMMARY_HEADERS), end="")
