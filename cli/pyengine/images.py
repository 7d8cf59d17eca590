"""Image commands: pull, images, rmi."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import json
import sys
from typing import Annotated, Any, TextIO

import typer

from cli.common.units import human_size
from cli.pyengine import completion as complete
from cli.pyengine.api import CLIError, DaemonError, Engine, path_quote
from cli.pyengine.app import app, config_format, engine, no_content_trust
from cli.pyengine.formatting import Template, ago, filters, local_time
from cli.pyengine.gotemplate_funcs import Record
from cli.pyengine.progress import PullProgress, check

_IMAGES_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
_IMAGES_DIGESTS_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
_IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                   "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
                   "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}
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


def platform_json(spec: str | None) -> str | None:
    """--platform os/arch[/variant] as the JSON OCI platform API 1.48+ takes for save, load, push and inspect."""
    if not spec:
        return None
    parts = spec.lower().split("/")
    if len(parts) < 2 or len(parts) > 3 or not all(parts):
        raise CLIError(f'invalid platform "{spec}": expected os/arch[/variant]', 125)
    doc = {"architecture": parts[1], "os": parts[0], **({"variant": parts[2]} if len(parts) == 3 else {})}
    return json.dumps(doc, separators=(",", ":"))


def refuse_platform(command: str, platform: str | None) -> None:
    if platform:
        raise CLIError(f"{command} --platform is not supported: pyengined keeps one platform per image", 125)


def pull_image(e: Engine, ref: str, out: TextIO, quiet: bool = False, platform: str | None = None,
               all_tags: bool = False) -> str:
    """Pull (the image for `platform`, if given; every tag of the repository with `all_tags`) with progress on
    `out`; the fully qualified reference pulled."""
    name, tag = split_reference(ref)
    if all_tags and tag:
        raise CLIError("tag can't be used with --all-tags/-a")
    if not tag and not all_tags:  # no tag at all asks the engine for every tag, as the API has it
        if not quiet:
            print("Using default tag: latest", file=out)
        tag = "latest"
    progress = None if quiet else PullProgress(out)
    try:
        for message in e.json_stream("POST", "/images/create", {"fromImage": name, "tag": tag, "platform": platform},
                                     headers=_NO_AUTH):
            if progress is not None:
                progress.show(message)
            else:
                check(message)
    finally:
        if progress is not None:
            progress.close()
    if all_tags:
        return _full_name(name)
    return f"{_full_name(name)}{'@' if tag.startswith('sha256:') else ':'}{tag}"


@app.command()
def pull(
    image: Annotated[str, typer.Argument(help="NAME[:TAG|@DIGEST]")],
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Suppress verbose output.")] = False,
    platform: Annotated[str | None, typer.Option("--platform", help="The platform to pull (os/arch).")] = None,
    all_tags: Annotated[bool, typer.Option("-a", "--all-tags",
                                           help="Download all tagged images in the repository.")] = False,
    disable_content_trust: Annotated[bool, typer.Option(
        "--disable-content-trust", help="Skip image verification (always: this CLI does no content trust).")]
    = True,
) -> None:
    """Download an image from a registry."""
    no_content_trust(disable_content_trust)
    print(pull_image(engine(), image, sys.stdout, quiet, platform, all_tags))


def _image_rows(summary: dict[str, Any], trunc: bool, show_digests: bool) -> list[Record]:
    """docker images' rows for one image: one per tag (times each digest of its repository when digests are
    shown), then the repositories known only by digest; an image without names is <none> <none>."""
    digests: dict[str, list[str]] = {}
    for ref in summary.get("RepoDigests") or []:
        repo, _, digest = ref.partition("@")
        if digest and ref != "<none>@<none>":
            digests.setdefault(repo, []).append(digest)
    names: list[tuple[str, str, str]] = []
    for ref in summary.get("RepoTags") or []:
        if ref == "<none>:<none>":
            continue
        repo, tag = ref.rsplit(":", 1)
        shown = digests.get(repo, []) if show_digests else []
        names += [(repo, tag, d) for d in shown] or [(repo, tag, "<none>")]
    tagged = {repo for repo, _, _ in names}
    for repo, found in digests.items():
        if repo not in tagged:
            names += [(repo, "<none>", d) for d in found] if show_digests else [(repo, "<none>", "")]
    size, shared = summary.get("Size", 0), summary.get("SharedSize", -1)
    image_id = summary["Id"].removeprefix("sha256:")[:12] if trunc else summary["Id"]
    return [Record("*formatter.ImageContext", {
        "Repository": repo, "Tag": tag, "ID": image_id, "Digest": digest,
        "CreatedSince": ago(summary.get("Created", 0)), "CreatedAt": local_time(summary.get("Created", 0)),
        "Size": human_size(size, 3), "VirtualSize": human_size(summary.get("VirtualSize", size)),
        "SharedSize": "N/A" if shared == -1 else human_size(shared),
        "UniqueSize": "N/A" if shared == -1 else human_size(size - shared),
        "Containers": "N/A" if summary.get("Containers", -1) < 0 else str(summary["Containers"]),
    }) for repo, tag, digest in names or [("<none>", "<none>", "<none>")]]


@app.command()
def images(
    repository: Annotated[str | None, typer.Argument(help="Only images with this name.")] = None,
    all_: Annotated[bool, typer.Option("-a", "--all", help="Show all images, intermediate ones too.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only show image IDs.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("-f", "--filter", help="Filter KEY=VALUE (repeatable).")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="Go template, 'table TEMPLATE' or 'json'.")] = None,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
    digests: Annotated[bool, typer.Option("--digests", help="Show digests.")] = False,
    tree: Annotated[bool, typer.Option("--tree", help="Refused: docker's experimental multi-platform tree.")]
    = False,
) -> None:
    """List images."""
    if tree:
        raise CLIError("--tree is not supported: pyengined keeps one platform per image", 125)
    given = list(filter_ or [])
    if repository:
        given.append(f"reference={repository}")
    summaries = engine().get("/images/json", {"all": 1 if all_ else None, "filters": filters(given)})
    spec = format_ or config_format("imagesFormat")
    if quiet:
        if format_:
            print("WARNING: Ignoring custom format, because both --format and --quiet are set.", file=sys.stderr)
        # One line a row, as docker prints them: an image with two names is listed twice.
        spec = "{{.ID}}"
    elif spec in (None, "", "table"):
        spec = _IMAGES_DIGESTS_FORMAT if digests else _IMAGES_FORMAT
    show_digests = digests or "{{.Digest}}" in spec
    rows = [row for s in summaries for row in _image_rows(s, not no_trunc, show_digests)]
    print(Template(spec).lines(rows, _IMAGES_HEADERS), end="")


@app.command()
def rmi(
    images_: Annotated[list[str], typer.Argument(metavar="IMAGE", help="Images to remove.", autocompletion=complete.images)],
    force: Annotated[bool, typer.Option("-f", "--force", help="Force removal of the image.")] = False,
    no_prune: Annotated[bool, typer.Option("--no-prune", help="Refused: pyengined keeps no untagged parents.")]
    = False,
    platform: Annotated[list[str] | None, typer.Option("--platform", help="Refused: one platform per image.")]
    = None,
) -> None:
    """Remove one or more images."""
    if no_prune:
        raise CLIError("rmi --no-prune is not supported: pyengined keeps no untagged parent images", 125)
    refuse_platform("rmi", ",".join(platform or []))
    e = engine()

    errors, fatal = [], False
    for ref in images_:
        try:
            removed = e.call("DELETE", f"/images/{path_quote(ref)}", {"force": 1 if force else None}) or []
        except CLIError as err:
            # As docker 28: with --force, an image that is not there is reported but is no failure.
            fatal = fatal or not isinstance(err, DaemonError) or err.status != 404
            errors.append(err.message)
            continue
        for item in removed:
            for key in ("Untagged", "Deleted"):
                if key in item:
                    print(f"{key}: {item[key]}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        if fatal or not force:
            raise SystemExit(1)
