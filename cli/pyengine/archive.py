"""`pyengine cp`: tar streams between host paths and container paths (GET/HEAD/PUT /containers/{id}/archive).

The destination rules are docker cp's: into an existing directory under the source's name,
otherwise as the destination's name; `SRC/.` copies a directory's contents.
"""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import base64
import json
import os
import posixpath
import sys
import threading
from typing import IO, Annotated, Any, Callable

import typer

from cli.pyengine.api import CLIError, DaemonError, Engine, path_quote
from cli.pyengine.app import app, engine

_GO_MODE_DIR = 1 << 31  # Go's os.ModeDir, which the stat header's mode uses
_GO_MODE_SYMLINK = 1 << 27


def _split(arg: str) -> tuple[str | None, str]:
    """CONTAINER:PATH, or a host path; one starting with / or . is always a host path, colon or not."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    container, _, path = arg.partition(":")
    return container, path


def _stat(header: str | None) -> dict[str, Any] | None:
    return json.loads(base64.b64decode(header)) if header else None


def _contents_only(path: str) -> bool:
    return path == "." or path.endswith("/.")


def _renamer(new_top: str | None) -> Callable[[str], str]:
    """Renames the archive's top entry (and everything below it) to `new_top`."""
    top: list[str] = []

    def rename(name: str) -> str:
        if new_top is None:
            return name
        if not top:
            top.append(name.split("/", 1)[0])
        first, sep, rest = name.partition("/")
        return new_top + sep + rest if first == top[0] else name

    return rename


def _followed(e: Engine, container: str, src: str) -> tuple[str, str | None]:
    """cp -L from a container: a symbolic link's target to fetch, and the link's name to give it."""
    with e.open("HEAD", f"/containers/{path_quote(container)}/archive", {"path": src}) as resp:
        stat = _stat(resp.header("X-Docker-Container-Path-Stat")) or {}
    if not stat.get("mode", 0) & _GO_MODE_SYMLINK:
        return src, None
    target = str(stat.get("linkTarget") or "")
    if not posixpath.isabs(target):
        target = posixpath.join(posixpath.dirname(src), target)
    return target, posixpath.basename(src.rstrip("/"))


def _copy_out(e: Engine, container: str, src: str, dest: str, follow: bool) -> None:
    src, link_name = _followed(e, container, src) if follow else (src, None)
    resp = e.open("GET", f"/containers/{path_quote(container)}/archive", {"path": src})
    with resp:
        if dest == "-":
            import shutil

            shutil.copyfileobj(resp, sys.stdout.buffer)
            return
        stat = _stat(resp.header("X-Docker-Container-Path-Stat")) or {}
        src_is_dir = bool(stat.get("mode", 0) & _GO_MODE_DIR)
        if os.path.isdir(dest) and not (src_is_dir and _contents_only(src)):
            target, rename = dest, _renamer(link_name)
        elif os.path.exists(dest) and src_is_dir:
            raise CLIError(f"cannot copy a directory to a file: {dest}")
        elif not os.path.exists(dest) and dest.endswith("/") and not src_is_dir:
            raise CLIError(f"destination directory {dest} must exist")
        else:
            target, rename = os.path.dirname(dest.rstrip("/")) or ".", _renamer(os.path.basename(dest.rstrip("/")))
            if not os.path.isdir(target):  # docker cp makes no parent directories
                raise CLIError(f'invalid output path: directory "{target}" does not exist')
        uid, gid = os.getuid(), os.getgid()
        import tarfile  # kept out of every other command's start-up (with what it imports, 10 ms)

        def place(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
            # Ownership goes to whoever runs the copy, as docker cp does; the tar filter refuses escapes.
            member = member.replace(name=rename(member.name), uid=uid, gid=gid, uname="", gname="", deep=False)
            if member.islnk():
                member = member.replace(linkname=rename(member.linkname), deep=False)
            return tarfile.tar_filter(member, path)

        # A stream ("r|") is only read; typeshed's file protocol asks for write/seek/tell as well.
        with tarfile.open(fileobj=resp, mode="r|") as tar:  # type: ignore[call-overload]
            tar.extractall(target, filter=place)


def _tar_writer(src: str, arcname: str, out: IO[bytes], errors: list[BaseException]) -> None:
    import tarfile

    try:
        with out, tarfile.open(fileobj=out, mode="w|") as tar:
            if _contents_only(src):
                tar.add(src, arcname=arcname, recursive=False)
                for entry in sorted(os.listdir(src)):
                    tar.add(os.path.join(src, entry), arcname=f"{arcname}/{entry}")
            else:
                tar.add(src, arcname=arcname)
    except BrokenPipeError:
        pass  # the daemon stopped reading: its answer says why
    except BaseException as exc:
        errors.append(exc)


def _copy_in(e: Engine, src: str, container: str, dest: str, copy_uid_gid: bool, follow: bool) -> None:
    # The container's existence first: a HEAD 404 carries no message to tell it from a missing path.
    e.get(f"/containers/{path_quote(container)}/json")
    query = {"noOverwriteDirNonDir": "true", "copyUIDGID": "true" if copy_uid_gid else None}
    headers = {"Content-Type": "application/x-tar"}
    archive_path = f"/containers/{path_quote(container)}/archive"
    if src == "-":
        e.open("PUT", archive_path, {**query, "path": dest}, body=sys.stdin.buffer, headers=headers).close()
        return
    if not os.path.lexists(src):
        raise CLIError(f"stat {src}: no such file or directory")
    try:
        with e.open("HEAD", archive_path, {"path": dest}) as resp:
            dest_stat = _stat(resp.header("X-Docker-Container-Path-Stat"))
    except DaemonError as err:
        if err.status != 404:
            raise
        dest_stat = None
    name = os.path.basename(os.path.abspath(src))
    if follow:
        # The link's target is sent, under the link's name.
        src = os.path.realpath(src)
    src_is_dir = os.path.isdir(src) and not os.path.islink(src)
    dest_is_dir = dest_stat is not None and bool(dest_stat.get("mode", 0) & _GO_MODE_DIR)
    if dest_is_dir and not (src_is_dir and _contents_only(src)):
        into, arcname = dest, name
    elif dest_stat is not None and not dest_is_dir and src_is_dir:
        raise CLIError(f"cannot copy a directory to a file: {dest}")
    elif dest_stat is None and dest.endswith("/") and not src_is_dir:
        raise CLIError(f"destination directory {dest} must exist")
    else:
        into, arcname = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/"))
    # Streamed through a pipe (sent chunked), so a large tree never sits in memory or on disk.
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []
    writer = threading.Thread(target=_tar_writer, args=(src, arcname, os.fdopen(write_fd, "wb"), errors),
                              daemon=True)
    writer.start()
    with os.fdopen(read_fd, "rb") as body:
        e.open("PUT", archive_path, {**query, "path": into}, body=body, headers=headers).close()
    writer.join()
    if errors:
        raise CLIError(f"copying {src}: {errors[0]}")


@app.command()
def cp(
    src: Annotated[str, typer.Argument(metavar="SRC", help="CONTAINER:SRC_PATH, a host path, or - (a tar on stdin).")],
    dest: Annotated[str, typer.Argument(metavar="DEST",
                                        help="CONTAINER:DEST_PATH, a host path, or - (a tar on stdout).")],
    archive: Annotated[bool, typer.Option("-a", "--archive", help="Keep uid/gid information.")] = False,
    follow_link: Annotated[bool, typer.Option("-L", "--follow-link", help="Follow a symbolic link in SRC_PATH.")]
    = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress output (this CLI never prints any).")]
    = False,
) -> None:
    """Copy files or folders between a container and the host."""
    (src_container, src_path), (dest_container, dest_path) = _split(src), _split(dest)
    if src_container and dest_container:
        raise CLIError("copying between containers is not supported")
    if src_container:
        _copy_out(engine(), src_container, src_path, dest_path, follow_link)
    elif dest_container:
        _copy_in(engine(), src_path, dest_container, dest_path, archive, follow_link)
    else:
        raise CLIError("must specify at least one container source")
