"""POST /build's `remote` as a git repository: fetched with the host's git, as dockerd fetches it.

The URL may end in `#ref:dir` (dockerd's form): the branch, tag or commit to check out (the remote's
HEAD when left out) and the directory of the checkout that is the context (its root when left out).
One commit is fetched (`--depth 1`); a server that cannot serve a shallow fetch (git's "dumb" http)
gets a whole one. Submodules come along. git runs with no terminal and no credential prompts: a
repository that needs them fails rather than hanging the build.

The checkout is then a context like any other: sent through the same tar reader as an uploaded one
(symlinks kept as links, never followed on the host; a `dir` that leaves the checkout is refused).
"""
from __future__ import annotations

import asyncio
import os
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidArgument

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}
_CHUNK = 1 << 16


@dataclass(frozen=True)
class GitRemote:
    url: str
    ref: str = ""
    subdir: str = ""


def parse(remote: str) -> GitRemote:
    """dockerd's reading of a git remote: `github.com/...` is https, the fragment is `ref:dir`."""
    url, _, fragment = remote.partition("#")
    if url.startswith("github.com/"):
        url = "https://" + url
    ref, _, subdir = fragment.partition(":")
    if url.startswith("-") or ref.startswith("-"):
        raise InvalidArgument(f"remote={remote}: not a git URL")
    return GitRemote(url, ref, subdir)


async def _git(*args: str, cwd: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, env={**_base_env(), **_GIT_ENV}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace").strip()
    if proc.returncode != 0:
        raise _GitFailed(text)
    return text


def _base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


class _GitFailed(Exception):
    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


async def checkout(remote: GitRemote, into: Path) -> Path:
    """Fetch `remote` into the empty directory `into`; the context directory inside it."""
    try:
        await _git("init", "-q", cwd=into)
        await _git("remote", "add", "origin", remote.url, cwd=into)
        wanted = remote.ref or "HEAD"
        try:
            await _git("fetch", "-q", "--depth", "1", "origin", "--", wanted, cwd=into)
        except _GitFailed:
            await _git("fetch", "-q", "origin", "--", wanted, cwd=into)
        await _git("checkout", "-q", "FETCH_HEAD", cwd=into)
        await _git("submodule", "update", "-q", "--init", "--recursive", "--depth", "1", cwd=into)
    except _GitFailed as e:
        raise InvalidArgument(f"error fetching: {e.output}") from None
    except FileNotFoundError:
        raise InvalidArgument("git repositories as build contexts need git on the daemon's host") from None
    return _context_dir(into, remote.subdir)


def _context_dir(root: Path, subdir: str) -> Path:
    top = root.resolve()
    context = (root / subdir.lstrip("/")).resolve() if subdir else top
    if context != top and top not in context.parents:
        raise InvalidArgument(f"the context directory {subdir!r} is outside the repository")
    if not context.is_dir():
        raise InvalidArgument(f"the context directory {subdir!r} is not a directory of the repository")
    return context


async def write_tar(directory: Path, spool: Path) -> None:
    """A tar of `directory`'s contents (links as links) into the file `spool`, in a thread."""
    def write() -> None:
        with tarfile.open(spool, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(os.listdir(directory)):
                tar.add(directory / name, arcname=name, recursive=True)

    await asyncio.to_thread(write)


async def read_chunks(spool: Path) -> AsyncIterator[bytes]:
    with open(spool, "rb") as f:
        while data := await asyncio.to_thread(f.read, _CHUNK):
            yield data
