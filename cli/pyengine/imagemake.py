"""Image-making commands: build, commit, import, tag, history."""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import datetime
import json
import os
import sys
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from cli.common.units import human_size
from cli.pyengine import completion as complete
from cli.pyengine.api import CLIError, chunks, path_quote
from cli.pyengine.app import app, check_output, engine, no_content_trust
from cli.pyengine.formatting import Template, ago
from cli.pyengine.gotemplate_funcs import Record
from cli.pyengine.images import split_reference


def _pairs(values: list[str], what: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not key:
            raise CLIError(f"invalid {what} {value!r}: expected KEY=VALUE", 125)
        # docker's --build-arg KEY (no value) takes it from the environment, or leaves it unset; a --label KEY
        # is the empty value.
        out[key] = rest if sep else os.environ.get(key) if what == "build-arg" else ""
    return out


def _errno_text(error: OSError) -> str:
    """An OS error's reason as Go words it (lower case)."""
    return os.strerror(error.errno or 0).lower()


def _dockerfile_path(context: Path, file: str | None) -> Path:
    """The Dockerfile as the docker CLI finds it: -f relative to the current directory, else the context's
    Dockerfile (or dockerfile); one that is not there is refused before anything is sent."""
    if file:
        path = Path(os.path.abspath(file))
    else:
        path = Path(os.path.abspath(context)) / "Dockerfile"
        if not os.path.lexists(path) and os.path.lexists(path.with_name("dockerfile")):
            path = path.with_name("dockerfile")
    try:
        os.path.realpath(path, strict=True)
    except OSError as e:
        raise CLIError("unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                       f"lstat {e.filename or path}: {_errno_text(e)}") from None
    return path


def _bytes(flag: str, value: str | None) -> int | None:
    from cli.pyengine.hostopts import memory_swap

    try:
        return memory_swap(value) if value else None
    except ValueError:
        raise CLIError(f'invalid argument "{value}" for "{flag}" flag: invalid size: \'{value}\'', 125) from None


# The archives docker takes as a context on stdin (tar, gzip, bzip2, xz); anything else there is a Dockerfile.
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def _is_archive(data: bytes) -> bool:
    return data.startswith(_ARCHIVE_MAGIC) or data[257:262] == b"ustar"


def _add_file(tar: Any, name: str, data: bytes) -> None:
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _stdin_context(dockerfile: str | None, compress: bool) -> tuple[IO[bytes], str]:
    """`build -`: an archive on stdin is the context as it is; a Dockerfile is a context of itself alone."""
    import gzip
    import io
    import tarfile

    data = sys.stdin.buffer.read()
    name = dockerfile or "Dockerfile"
    if not _is_archive(data):
        body = io.BytesIO()
        with tarfile.open(fileobj=body, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_file(tar, name, data)
        data = body.getvalue()
    return io.BytesIO(gzip.compress(data) if compress else data), name


def _context_tar(context: Path, dockerfile: Path, compress: bool = False) -> tuple[IO[bytes], str]:
    """The context as a tar (gzipped with --compress; spooled to disk when large); with a Dockerfile outside
    the context (or on stdin: `-f -`) it goes in under a random name, as the docker CLI sends it. The daemon
    applies .dockerignore."""
    import secrets  # these three kept out of every other command's start-up
    import tarfile
    import tempfile

    outside = dockerfile != Path("-") and not dockerfile.resolve().is_relative_to(context.resolve())
    if outside and dockerfile.is_dir():
        raise CLIError(f"read {dockerfile}: is a directory")
    spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)
    name = f".dockerfile.{secrets.token_hex(10)}"
    with tarfile.open(fileobj=spool, mode="w:gz" if compress else "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(context.iterdir()):
            tar.add(str(entry), arcname=entry.name)
        if dockerfile == Path("-"):
            _add_file(tar, name, sys.stdin.buffer.read())
        elif outside:
            tar.add(str(dockerfile), arcname=name)
        else:
            name = str(dockerfile.resolve().relative_to(context.resolve()))
    spool.seek(0)
    return spool, name


@app.command()
def build(
    path: Annotated[str, typer.Argument(help="The build context directory; - for a context archive or a "
                                             "Dockerfile on stdin.")],
    tag: Annotated[list[str] | None, typer.Option("-t", "--tag", help="Name and optionally a tag.")] = None,
    file: Annotated[str | None, typer.Option("-f", "--file", help="Name of the Dockerfile.")] = None,
    build_arg: Annotated[list[str] | None, typer.Option("--build-arg", help="Set build-time variables.")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="Set metadata for an image.")] = None,
    target: Annotated[str, typer.Option("--target", help="Set the target build stage to build.")] = "",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use cache when building.")] = False,
    pull: Annotated[bool, typer.Option("--pull", help="Always attempt to pull a newer base image.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only the image ID.")] = False,
    network: Annotated[str, typer.Option("--network", help="Networking mode for RUN.")] = "default",
    force_rm: Annotated[bool, typer.Option("--force-rm", help="Always remove intermediate containers.")] = False,
    rm: Annotated[bool, typer.Option("--rm", help="Remove intermediate containers after a successful build "
                                                  "(--rm=false keeps them).")] = True,
    add_host: Annotated[list[str] | None, typer.Option("--add-host", help="Add a host-to-IP mapping host:ip.")]
    = None,
    cache_from: Annotated[list[str] | None, typer.Option("--cache-from", help="Images to consider as cache "
                                                                              "sources.")] = None,
    cgroup_parent: Annotated[str | None, typer.Option("--cgroup-parent", help="Parent cgroup of RUN steps.")]
    = None,
    compress: Annotated[bool, typer.Option("--compress", help="Compress the build context using gzip.")] = False,
    cpu_period: Annotated[int | None, typer.Option("--cpu-period", help="CPU CFS period.")] = None,
    cpu_quota: Annotated[int | None, typer.Option("--cpu-quota", help="CPU CFS quota.")] = None,
    cpu_shares: Annotated[int | None, typer.Option("-c", "--cpu-shares", help="CPU shares (relative weight).")]
    = None,
    cpuset_cpus: Annotated[str | None, typer.Option("--cpuset-cpus", help="CPUs allowed (0-3, 0,1).")] = None,
    cpuset_mems: Annotated[str | None, typer.Option("--cpuset-mems", help="Memory nodes allowed (0-3, 0,1).")]
    = None,
    iidfile: Annotated[str | None, typer.Option("--iidfile", help="Write the image ID to the file.")] = None,
    isolation: Annotated[str | None, typer.Option("--isolation", help="Container isolation technology.")] = None,
    memory: Annotated[str | None, typer.Option("-m", "--memory", metavar="BYTES", help="Memory limit.")] = None,
    memory_swap: Annotated[str | None, typer.Option(
        "--memory-swap", metavar="BYTES", help="Memory plus swap limit (-1: unlimited swap).")] = None,
    platform: Annotated[str | None, typer.Option("--platform", help="Set platform (os/arch).")] = None,
    security_opt: Annotated[list[str] | None, typer.Option("--security-opt", help="Security options.")] = None,
    shm_size: Annotated[str | None, typer.Option("--shm-size", metavar="BYTES", help="Size of /dev/shm.")] = None,
    ulimit: Annotated[list[str] | None, typer.Option("--ulimit", help="Ulimit options NAME=SOFT[:HARD].")] = None,
    squash: Annotated[bool, typer.Option("--squash", help="Refused: needs an experimental daemon.")] = False,
    disable_content_trust: Annotated[bool, typer.Option(
        "--disable-content-trust", help="Skip image verification (always: this CLI does no content trust).")]
    = True,
) -> None:
    """Build an image from a Dockerfile."""
    from cli.pyengine import hostopts
    from cli.pyengine.reference import name_error

    for name in tag or []:
        error = name_error(name)
        if error:
            raise CLIError(f'invalid argument "{name}" for "-t, --tag" flag: {error}', 125)
    no_content_trust(disable_content_trust)
    if squash:
        raise CLIError('"--squash" is only supported on a Docker daemon with experimental features enabled')
    sizes = {key: _bytes(flag, value) for key, flag, value in (
        ("memory", "--memory", memory), ("memswap", "--memory-swap", memory_swap), ("shmsize", "--shm-size", shm_size))}
    context = Path(path)
    if path == "-" and file == "-":
        raise CLIError("invalid argument: can't use stdin for both build context and dockerfile")
    if path == "-":
        body, dockerfile = _stdin_context(file, compress)
    elif not context.is_dir():
        raise CLIError(f"unable to prepare context: path {path!r} not found", 1)
    else:
        body, dockerfile = _context_tar(context, Path("-") if file == "-" else _dockerfile_path(context, file),
                                        compress)
    limits = hostopts.ulimits(ulimit)
    query: dict[str, Any] = {
        "extrahosts": hostopts.extra_hosts(add_host), "cachefrom": json.dumps(cache_from) if cache_from else None,
        "cgroupparent": cgroup_parent, "cpuperiod": cpu_period, "cpuquota": cpu_quota, "cpushares": cpu_shares,
        "cpusetcpus": cpuset_cpus, "cpusetmems": cpuset_mems, **sizes,
        # As docker: the default isolation goes unsaid.
        "isolation": isolation if isolation and isolation.lower() != "default" else None,
        "platform": platform, "rm": None if rm else "0", "securityopt": security_opt or None,
        "ulimits": json.dumps(limits, separators=(",", ":")) if limits else None,
        "t": tag or None, "dockerfile": dockerfile, "target": target or None, "q": int(quiet) or None,
        "nocache": int(no_cache) or None, "pull": int(pull) or None, "forcerm": int(force_rm) or None,
        "networkmode": network if network != "default" else None, "version": "1",
        "buildargs": json.dumps(_pairs(build_arg or [], "build-arg")) if build_arg else None,
        "labels": json.dumps(_pairs(label or [], "label")) if label else None,
    }
    headers = {"Content-Type": "application/x-tar", "X-Registry-Config": "e30="}
    if iidfile:
        # As docker: a failed build leaves no stale ID behind.
        try:
            os.remove(iidfile)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CLIError(f"Removing image ID file: remove {iidfile}: {_errno_text(e)}") from None
    image_id = ""
    held: list[str] = []  # a quiet build's output: the daemon sends it before the error of a failed build
    with body, engine().open("POST", "/build", query, body, headers) as resp:
        for line in resp:
            if not line.strip():
                continue
            message = json.loads(line)
            if "errorDetail" in message or "error" in message:
                detail = message.get("errorDetail") or {}
                sys.stderr.write("".join(held))
                raise CLIError(str(detail.get("message") or message.get("error")), int(detail.get("code") or 1))
            if "aux" in message:
                image_id = str(message["aux"].get("ID", ""))
            elif "stream" in message and quiet:
                held.append(message["stream"])
            elif "stream" in message:
                sys.stdout.write(message["stream"])
            elif "status" in message and quiet:
                held.append(message["status"] + "\n")
            elif "status" in message:
                print(message["status"])
    if quiet and not image_id and held:
        # A quiet build's answer is the image's ID alone (no aux), as dockerd sends it.
        image_id = held[-1].strip()
    if quiet:
        print(image_id)
    if iidfile:
        try:
            with open(iidfile, "w") as f:
                f.write(image_id)
        except OSError as e:
            raise CLIError(f"open {iidfile}: {_errno_text(e)}") from None


@app.command()
def commit(
    container: Annotated[str, typer.Argument(help="CONTAINER")],
    repository: Annotated[str, typer.Argument(help="[REPOSITORY[:TAG]]")] = "",
    author: Annotated[str, typer.Option("-a", "--author", help="Author.")] = "",
    message: Annotated[str, typer.Option("-m", "--message", help="Commit message.")] = "",
    change: Annotated[list[str] | None, typer.Option("-c", "--change", help="Apply a Dockerfile instruction.")] = None,
    pause: Annotated[bool, typer.Option("-p/--no-pause", "--pause", help="Pause the container while committing.")]
    = True,
) -> None:
    """Create a new image from a container's changes."""
    repo, tag = split_reference(repository) if repository else ("", "")
    answer = engine().post("/commit", {"container": container, "repo": repo or None, "tag": tag or None,
                                       "author": author or None, "comment": message or None,
                                       "pause": int(pause), "changes": change or None})
    print(answer["Id"])


@app.command(name="import")
def import_(
    source: Annotated[str, typer.Argument(help="file|URL|-")],
    repository: Annotated[str, typer.Argument(help="[REPOSITORY[:TAG]]")] = "",
    change: Annotated[list[str] | None, typer.Option("-c", "--change", help="Apply a Dockerfile instruction.")] = None,
    message: Annotated[str, typer.Option("-m", "--message", help="Commit message for the imported image.")] = "",
    platform: Annotated[str, typer.Option("--platform", help="Set the platform.")] = "",
) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    repo, tag = split_reference(repository) if repository else ("", "")
    local = source == "-" or "://" not in source
    query = {"fromSrc": "-" if local else source, "repo": repo or None, "tag": tag or None,
             "message": message or None, "changes": change or None, "platform": platform or None}
    try:
        body: Any = sys.stdin.buffer if source == "-" else open(source, "rb") if local else None
    except OSError as e:
        raise CLIError(f"open {source}: {e.strerror}", 1) from None
    try:
        with engine().open("POST", "/images/create", query, body,
                           {"Content-Type": "application/x-tar"} if body is not None else None) as resp:
            for line in resp:
                if line.strip():
                    msg = json.loads(line)
                    if "error" in msg:
                        raise CLIError(str(msg["error"]), 1)
                    status = str(msg.get("status", ""))
                    if status.startswith("sha256:"):
                        print(status)
    finally:
        if body is not None and body is not sys.stdin.buffer:
            body.close()


@app.command(name="tag")
def tag_(
    source: Annotated[str, typer.Argument(help="SOURCE_IMAGE[:TAG]")],
    target: Annotated[str, typer.Argument(help="TARGET_IMAGE[:TAG]")],
) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    from cli.pyengine.reference import name_error, reference_error

    for ref, error in ((source, reference_error(source)), (target, name_error(target))):
        if error:
            raise CLIError(f'Error parsing reference: "{ref}" is not a valid repository/tag: {error}')
    if "@" in target:
        raise CLIError("refusing to create a tag with a digest reference")
    repo, tag = split_reference(target)
    engine().post(f"/images/{path_quote(source)}/tag", {"repo": repo, "tag": tag or "latest"})


_HISTORY_FORMAT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
_HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                    "Size": "SIZE", "Comment": "COMMENT"}


def _history_record(row: dict[str, Any], trunc: bool, human: bool = True) -> Record:
    created = int(row.get("Created") or 0)
    created_by = str(row.get("CreatedBy") or "").replace("\t", " ")
    if trunc and len(created_by) > 45:
        created_by = created_by[:44] + "…"
    size = int(row.get("Size") or 0)
    # Go's RFC 3339: local time, "Z" for UTC.
    at = datetime.datetime.fromtimestamp(created).astimezone().isoformat().replace("+00:00", "Z")
    return Record("*image.historyContext", {
        "ID": _short(row["Id"], not trunc), "CreatedSince": ago(created) if human else at, "CreatedAt": at,
        "CreatedBy": created_by, "Size": human_size(size, 3) if human else str(size),
        "Comment": row.get("Comment") or ""})


@app.command()
def history(
    image: Annotated[str, typer.Argument(help="IMAGE", autocompletion=complete.images)],
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only show image IDs.")] = False,
    format_: Annotated[str | None, typer.Option("--format", help="Go template, 'table TEMPLATE' or 'json'.")] = None,
    human: Annotated[bool, typer.Option("-H", "--human", help="Sizes and dates in human readable format "
                                                              "(--human=false: raw).")] = True,
    platform: Annotated[str | None, typer.Option("--platform", help="Refused: one platform per image.")] = None,
) -> None:
    """Show the history of an image."""
    from cli.pyengine.images import refuse_platform

    refuse_platform("history", platform)
    rows = [_history_record(r, not no_trunc, human)
            for r in engine().get(f"/images/{path_quote(image)}/history")]
    default = _HISTORY_FORMAT if human else _HISTORY_FORMAT.replace("{{.CreatedSince}}", "{{.CreatedAt}}")
    spec = "{{.ID}}" if quiet else format_ if format_ not in (None, "", "table") else default
    print(Template(spec).lines(rows, _HISTORY_HEADERS), end="")


def _short(image_id: str, no_trunc: bool) -> str:
    if image_id == "<missing>" or no_trunc:
        return image_id
    return image_id.removeprefix("sha256:")[:12]


@app.command()
def export(
    container: Annotated[str, typer.Argument(help="CONTAINER")],
    output: Annotated[str, typer.Option("-o", "--output", help="Write to a file, instead of STDOUT.")] = "",
) -> None:
    """Export a container's filesystem as a tar archive."""
    if not output and sys.stdout.isatty():
        raise CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    if output:
        check_output(output, "export container")
    target = output + ".pyengine-partial" if output else ""
    with engine().open("GET", f"/containers/{path_quote(container)}/export") as resp:
        try:
            sink = open(target, "wb") if target else sys.stdout.buffer
        except OSError as e:
            raise CLIError(f"failed to export container: open {target}: {_errno_text(e)}") from None
        try:
            for data in chunks(resp):
                sink.write(data)
        except BaseException as e:
            if not target:
                raise
            sink.close()
            os.unlink(target)  # the file is written whole or not at all
            if isinstance(e, OSError):
                raise CLIError(f"failed to export container: {_errno_text(e)}") from None
            raise
    if target:
        sink.close()
        os.replace(target, output)
