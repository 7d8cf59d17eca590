"""Build contexts on disk: one directory per build under `<data-root>/builder/contexts`, as POST /build receives it.

The context comes from the request's body (a tar: plain, gzip, bzip2 or xz, told
apart by their magic) or from the `remote` URL, and is unpacked as it streams in
(engine.builder.context.extract, fed through engine.builder.context.stream): memory
stays bounded whatever its size. Any failure, a client that goes away mid-upload, or
a cancelled build removes the directory before the error goes on.

Then the Dockerfile is found as dockerd finds it: the `dockerfile` parameter is a
path inside the context (default "Dockerfile", with dockerd's fallback to
"dockerfile"); symlinks on its way are followed inside the context; a path that
leaves it is refused. The docker CLI, given a -f outside the context, adds that file
to the tar under a random name (".dockerfile.<hex>") that it also lists in the
.dockerignore it sends: that is an ordinary path here, and like dockerd the Dockerfile
and the .dockerignore are read first and then dropped from the context when the
.dockerignore excludes them, so COPY never sees them.

The contexts directory is 0700: a context keeps the modes the tar gave its files
(setuid ones too), and nobody else on the host may reach them. Leftovers of a daemon
that died mid-build are removed at the next start, with the builder's other work
directories (engine/backend.py), so that an engine that never builds never loads this.
"""
from __future__ import annotations

import asyncio
import io
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterable, Callable
from functools import partial
from pathlib import Path

from aiohttp import web

from engine.builder.context import git
from engine.builder.context import remote as remotes
from engine.builder.context.build_context import BuildContext
from engine.builder.context.checksum import Memo
from engine.builder.context.dockerignore import DockerIgnore
from engine.builder.context.extract import IGNORE_FILE, Extractor
from engine.builder.context.paths import OutsideContext, escapes, relative, resolve
from engine.builder.context.stream import consume, settle
from engine.errors import InvalidArgument

DEFAULT_DOCKERFILE = "Dockerfile"
MAX_DOCKERFILE = 16 << 20  # far beyond any real Dockerfile; it is held in memory whole
_TRASH = ".trash-"


def dockerfile_name(param: str | None) -> str:
    """The Dockerfile's context-relative path from the `dockerfile` query parameter."""
    if not param:
        return DEFAULT_DOCKERFILE
    name = relative(param)
    if escapes(name) or name == ".":
        raise InvalidArgument(f"dockerfile={param}: the Dockerfile must be a file inside the build context")
    return name


def _unpack(directory: Path, keep: frozenset[str], stream: io.BufferedReader) -> tuple[DockerIgnore | None, Memo]:
    """Blocking: the tar in `stream` into `directory`; the .dockerignore it had, if any, and its files' hashes."""
    if not stream.peek(1):
        return None, {}  # an empty body is an empty context (dockerd then misses the Dockerfile)
    extractor = Extractor(directory, keep)
    try:
        extractor.run(stream)
    finally:
        extractor.close()
    return extractor.ignore, extractor.hashes


def _read_dockerfile(directory: Path, name: str) -> tuple[str, str]:
    """Blocking: (the name found, the text) of the Dockerfile, with dockerd's fallback and words."""
    candidates = [name, name.lower()] if name == DEFAULT_DOCKERFILE else [name]
    for candidate in candidates:
        try:
            path = resolve(directory, candidate)
        except OutsideContext:
            raise InvalidArgument(f"dockerfile={name}: forbidden path outside the build context") from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            break
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_DOCKERFILE + 1)
        if not data:
            raise InvalidArgument(f"the Dockerfile ({candidate}) cannot be empty")
        if len(data) > MAX_DOCKERFILE:
            raise InvalidArgument(f"the Dockerfile ({candidate}) is larger than {MAX_DOCKERFILE} bytes")
        return candidate, data.decode("utf-8", "replace")
    raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")


def _drop_ignored(directory: Path, ignore: DockerIgnore, names: list[str]) -> None:
    """dockerd's rule: the .dockerignore and the Dockerfile leave the context once read, if it excludes them."""
    for name in names:
        if ignore.matches(name):
            try:
                path = resolve(directory, name, follow_last=False)
            except InvalidArgument:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def _finish(directory: Path, name: str, ignore: DockerIgnore | None) -> tuple[str, str]:
    found, text = _read_dockerfile(directory, name)
    if ignore is not None:
        _drop_ignored(directory, ignore, [IGNORE_FILE, found])
    return found, text


async def _read_text(chunks: AsyncIterable[bytes], what: str) -> str:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > MAX_DOCKERFILE:
            raise InvalidArgument(f"{what} is larger than {MAX_DOCKERFILE} bytes")
    return data.decode("utf-8", "replace")


class ContextStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _make(self, path: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.mkdir(mode=0o700)

    async def release(self, directory: Path) -> None:
        """Remove a context directory: renamed aside first, so a half-removed one is never taken for a context."""
        def remove() -> None:
            trash = directory.with_name(_TRASH + directory.name)
            try:
                directory.rename(trash)
            except FileNotFoundError:
                return
            shutil.rmtree(trash, ignore_errors=True)
        await settle(asyncio.to_thread(remove))

    async def receive(self, body: AsyncIterable[bytes], *, dockerfile: str | None = None,
                      remote: str = "") -> BuildContext:
        """A build's context from a tar `body` or, when `remote` is set, from that URL (the body is not read)."""
        name = dockerfile_name(dockerfile)
        if remote:
            remotes.check(remote)
        directory = self.root / secrets.token_hex(16)
        try:
            await settle(asyncio.to_thread(self._make, directory))
            keep = frozenset([name, name.lower()] if name == DEFAULT_DOCKERFILE else [name])
            unpack = partial(_unpack, directory, keep)
            if remote and remotes.is_git(remote):
                ignore, hashes = await self._from_git(remote, directory, unpack)
            elif remote:
                async with remotes.fetch(remote) as (media_type, chunks):
                    if media_type == remotes.TEXT:
                        text = await _read_text(chunks, f"the Dockerfile at {remote}")
                        return BuildContext(directory, name, text, None, self.release)
                    ignore, hashes = await consume(chunks, unpack)
            else:
                ignore, hashes = await consume(body, unpack)
            found, text = await asyncio.to_thread(_finish, directory, name, ignore)
            return BuildContext(directory, found, text, ignore, self.release, hashes)
        except BaseException:
            await self.release(directory)
            raise

    async def _from_git(self, remote: str, directory: Path,
                        unpack: Callable[[io.BufferedReader], tuple[DockerIgnore | None, Memo]]
                        ) -> tuple[DockerIgnore | None, Memo]:
        """The checkout goes through the same tar reader as an uploaded context; then it goes."""
        work = directory.with_name(_TRASH + "git-" + directory.name)
        try:
            await settle(asyncio.to_thread(self._make, work))
            await asyncio.to_thread((work / "repo").mkdir)
            context = await git.checkout(git.parse(remote), work / "repo")
            await git.write_tar(context, work / "context.tar")
            return await consume(git.read_chunks(work / "context.tar"), unpack)
        finally:
            await settle(asyncio.to_thread(shutil.rmtree, work, True))

    async def from_request(self, request: web.Request) -> BuildContext:
        """POST /build's context: its `dockerfile` and `remote` parameters, and the request's body."""
        return await self.receive(request.content.iter_any(), dockerfile=request.query.get("dockerfile"),
                                  remote=request.query.get("remote", ""))

