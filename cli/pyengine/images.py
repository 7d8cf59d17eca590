"""Image commands: pull, images, rmi."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import json
import sys
from typing import Annotated, Any, TextIO

import typer

from cli.common.units import human_size
from cli.pyengine.api import Engine, path_quote
from cli.pyengine.app import app, engine, for_each
from cli.pyengine.formatting import Template, ago, local_time
from cli.pyengine.progress import PullProgress, check

_IMAGES_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
_IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                   "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS"}
# base64url of "{}": the daemon wants the header, and anonymous pulls have nothing to say in it.
_NO_AUTH = {"X-Registry-Auth": "e30="}


def split_reference(ref: str) -> tuple[str, str]:
    """(name, tag or digest); the tag is empty when the reference has none."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, digest
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        return ref[:colon], ref[colon + 1:]
    return ref, ""


def _full_name(name: str) -> str:
    """Docker Hub's implicit parts spelled out: busybox → docker.io/library/busybox."""
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"docker.io/{name}" if sep else f"docker.io/library/{name}"


def with_tag(ref: str) -> str:
    name, tag = split_reference(ref)
    return ref if tag else f"{name}:latest"


def pull_image(e: Engine, ref: str, out: TextIO, quiet: bool = False) -> str:
    """Pull with progress on `out`; the fully qualified reference pulled."""
    name, tag = split_reference(ref)
    if not tag:
        if not quiet:
            print("Using default tag: latest", file=out)
        tag = "latest"
    progress = None if quiet else PullProgress(out)
    try:
        for message in e.json_stream("POST", "/images/create", {"fromImage": name, "tag": tag}, headers=_NO_AUTH):
            if progress is not None:
                progress.show(message)
            else:
                check(message)
    finally:
        if progress is not None:
            progress.close()
    return f"{_full_name(name)}{'@' if tag.startswith('sha256:') else ':'}{tag}"


@app.command()
def pull(
    image: Annotated[str, typer.Argument(help="NAME[:TAG|@DIGEST]")],
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Suppress verbose output.")] = False,
) -> None:
    """Download an image from a registry."""
    print(pull_image(engine(), image, sys.stdout, quiet))


def _image_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    """One row per name, as `docker images` lists them; an unnamed image is <none> <none>."""
    tags = [t for t in summary.get("RepoTags") or [] if t != "<none>:<none>"]
    digests = [d for d in summary.get("RepoDigests") or [] if d != "<none>@<none>"]
    names = [t.rsplit(":", 1) for t in tags] or [[d.split("@")[0], "<none>"] for d in digests[:1]] or \
        [["<none>", "<none>"]]
    size = summary.get("Size", 0)
    rows = []
    for repo, tag in names:
        digest = next((d.split("@", 1)[1] for d in digests if d.split("@")[0] == repo), "<none>")
        rows.append({
            "Repository": repo, "Tag": tag, "ID": summary["Id"].removeprefix("sha256:")[:12], "Digest": digest,
            "CreatedSince": ago(summary.get("Created", 0)), "CreatedAt": local_time(summary.get("Created", 0)),
            "Size": human_size(size, 3), "Containers": "N/A" if summary.get("Containers", -1) < 0
            else str(summary["Containers"]),
        })
    return rows


@app.command()
def images(
    repository: Annotated[str | None, typer.Argument(help="Only images with this name.")] = None,
    all_: Annotated[bool, typer.Option("-a", "--all", help="Show all images, intermediate ones too.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only show image IDs.")] = False,
    format_: Annotated[str | None, typer.Option("--format", help="Go-template-like format, or 'table ...'.")] = None,
) -> None:
    """List images."""
    query: dict[str, Any] = {"all": 1 if all_ else None}
    if repository:
        query["filters"] = json.dumps({"reference": {repository: True}})
    summaries = engine().get("/images/json", query)
    if quiet:
        ids = [s["Id"].removeprefix("sha256:")[:12] for s in summaries]
        print("".join(i + "\n" for i in dict.fromkeys(ids)), end="")
        return
    rows = [row for s in summaries for row in _image_rows(s)]
    print(Template(format_ or _IMAGES_FORMAT).lines(rows, _IMAGES_HEADERS), end="")


@app.command()
def rmi(
    images_: Annotated[list[str], typer.Argument(metavar="IMAGE", help="Images to remove.")],
    force: Annotated[bool, typer.Option("-f", "--force", help="Force removal of the image.")] = False,
) -> None:
    """Remove one or more images."""
    e = engine()

    def remove(ref: str) -> None:
        for item in e.call("DELETE", f"/images/{path_quote(ref)}", {"force": 1 if force else None}) or []:
            for key in ("Untagged", "Deleted"):
                if key in item:
                    print(f"{key}: {item[key]}")

    for_each(images_, remove)
