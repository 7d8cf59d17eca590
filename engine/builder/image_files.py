"""Files into and out of an image's filesystem during a build, and the layer that results.

A COPY's tar is the layer itself: with no image yet (FROM scratch) or for COPY --link as it is, as
BuildKit's independent COPY layers are; over an image with the image's directories on the way carried
as they are (engine.builder.copy_layer). Where that could differ from the classic copy, files go into
a runtime container of the stage's image (never started) and the diff service reads the layer back.
Files come out of an image (COPY --from, /etc/passwd for --chown) through such a container too.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import posixpath
import secrets
import shutil
import tarfile
import tempfile
from dataclasses import replace
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

from engine.builder.context.stream import consume
from engine.builder.copy_layer import ancestors, direct_plan, write_layer
from engine.builder.copy_tar import CopyTar, Ownership, Source
from engine.builder.state import StageState
from engine.images.compose import NewLayer
from engine.images.model import LocalImage
from runtime.client import NotFound
from runtime.client.diff import DiffAPI
from runtime.client.ingest import IngestAPI
from runtime.client.path_info import PathInfoAPI
from runtime.client.records import Container

_CHUNK = 1 << 16
_DIR_MODE_BIT = 1 << 31  # Go's os.ModeDir in a path stat's mode
_SYMLINK_MODE_BIT = 1 << 27  # Go's os.ModeSymlink


class CopyRuntime(DiffAPI, IngestAPI, PathInfoAPI, Protocol):
    async def create_container(self, container_id: str, image: str, options: dict[str, Any] | None = None, *,
                               snapshotter: str | None = None, runtime: str = "runc", init: bool = False,
                               labels: dict[str, str] | None = None, namespace: str | None = None) -> Container: ...

    async def remove_container(self, container_id: str, keep_snapshot: bool = False,
                               namespace: str | None = None) -> None: ...

    async def stat_path(self, container_id: str, path: str, namespace: str | None = None) -> dict[str, Any]: ...

    def archive(self, container_id: str, path: str, namespace: str | None = None
                ) -> contextlib.AbstractAsyncContextManager[tuple[dict[str, Any], AsyncIterator[bytes]]]: ...

    async def put_archive(self, container_id: str, path: str, data: AsyncIterator[bytes], *,
                          no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False,
                          namespace: str | None = None) -> None: ...


def runtime_name(image: LocalImage) -> str:
    return image.records[0].name


class ImageFiles:
    """A never-started runtime container of an image: its files read, new files put in, its diff taken."""

    def __init__(self, runtime: CopyRuntime, image: LocalImage) -> None:
        self.runtime = runtime
        self.image = image
        self.id = f"pyengine-build-{secrets.token_hex(16)}"
        self.snapshotter = ""
        self.snapshot_key = ""
        self._removal: asyncio.Future[None] | None = None

    async def __aenter__(self) -> ImageFiles:
        # The image's own /etc files, not the ones the runtime mounts for a container that runs.
        c = await self.runtime.create_container(self.id, runtime_name(self.image),
                                                {"args": ["#(nop)"], "etc_files": False},
                                                labels={"io.pyengine.build": "true"})
        self.snapshotter, self.snapshot_key = c.snapshotter, c.snapshot_key
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release_soon()
        assert self._removal is not None
        await asyncio.shield(self._removal)

    def release_soon(self) -> None:
        """Start removing the container, beside what the caller does next without it; the block's end waits."""
        if self._removal is None:
            self._removal = asyncio.ensure_future(self.runtime.remove_container(self.id))

    async def is_dir(self, path: str) -> bool | None:
        """True for a directory, False for anything else, None when nothing is there."""
        try:
            st = await self.runtime.stat_path(self.id, path)
        except NotFound:
            return None
        return bool(int(st.get("mode", 0)) & _DIR_MODE_BIT)

    async def resolves_to_file(self, path: str) -> bool:
        """Whether `path`, its symlinks followed inside the image, is something other than a directory."""
        for _ in range(40):  # the kernel's limit on links followed
            try:
                st = await self.runtime.stat_path(self.id, path)
            except NotFound:
                return False
            mode, target = int(st.get("mode", 0)), str(st.get("linkTarget") or "")
            if not (mode & _SYMLINK_MODE_BIT and target):
                return not mode & _DIR_MODE_BIT
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        return False

    async def missing_parents(self, path: str) -> list[str]:
        """The directories on the way to `path` (itself included) the image lacks, outermost first."""
        missing: list[str] = []
        current = posixpath.normpath(path)
        while current not in ("/", ""):
            if await self.is_dir(current) is not None:
                break
            missing.append(current)
            current = posixpath.dirname(current)
        return list(reversed(missing))

    async def fetch(self, path: str, into: Path) -> Path:
        """Copy `path` out of the image into directory `into`; what it became there.

        A symlink at `path` is followed in the image's root (as COPY --from follows it), never on the host:
        what comes back is the file or directory it leads to, named as `path` is.
        """
        into.mkdir(parents=True, exist_ok=True)
        st = await self.runtime.stat_path(self.id, path)
        name = posixpath.basename(posixpath.normpath(path)) or str(st.get("name") or "")
        if int(st.get("mode", 0)) & _SYMLINK_MODE_BIT and st.get("linkTarget"):
            path = str(st["linkTarget"])
        async with self.runtime.archive(self.id, path) as (target, body):
            # Unpacked as it arrives: no copy of the tar on disk first.
            await consume(body, lambda stream: _extract(stream, into))
        if posixpath.normpath(path) == "/":
            return into  # the root's entries are named from it: they are `into`'s now
        fetched = into / str(target.get("name") or posixpath.basename(path.rstrip("/")))
        if fetched.is_symlink():
            raise NotFound(f"{path}: a symlink that leads nowhere in the image")
        if name and fetched.name != name and not (into / name).exists():
            fetched = fetched.rename(into / name)
        return fetched

    async def put(self, tar_file: Path) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            with open(tar_file, "rb") as f:
                while data := await asyncio.to_thread(f.read, _CHUNK):
                    yield data

        await self.runtime.put_archive(self.id, "/", chunks())


def _extract(stream: io.BufferedReader, into: Path) -> None:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        tar.extractall(into, filter="tar")


async def write_tar(build: Callable[[CopyTar], None], owner: Ownership, into: Path) -> Path:
    """Run `build` in a thread against a tar written to a file under `into`."""
    path = into / f".copy-{secrets.token_hex(4)}.tar"

    def work() -> None:
        with open(path, "wb") as out:
            tar = CopyTar(out, owner)
            try:
                build(tar)
            finally:
                tar.close()

    await asyncio.to_thread(work)
    return path


class Scratch:
    """A step's scratch directory, made when first asked for (a COPY found in the cache needs none); `close`
    removes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._path: Path | None = None

    async def path(self) -> Path:
        if self._path is None:
            self._path = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self.root, prefix="step-"))
        return self._path

    async def close(self) -> None:
        if self._path is not None:
            path, self._path = self._path, None
            await asyncio.to_thread(shutil.rmtree, path, True)


@contextlib.asynccontextmanager
async def scratch_dir(root: Path) -> AsyncIterator[Path]:
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=root, prefix="step-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


async def put_files(runtime: CopyRuntime, state: StageState, sources: list[Source], owner: Ownership,
                    dest: str, work: Path, lease: str, *, single_file: bool, link: bool) -> NewLayer:
    """The layer of `sources` put into the stage's image under `dest`: a directory (its missing parents
    are created), or with `single_file` the file's own path unless the image has a directory there."""
    if state.image is None or link:
        parents = ancestors(posixpath.dirname(dest) if single_file else dest)
        return await write_layer(runtime, lambda tar: _fill(tar, parents, sources), owner, lease)
    async with ImageFiles(runtime, state.image) as files:
        build = await direct_plan(runtime, files.id, posixpath.dirname(dest) if single_file else dest, sources)
        if build is not None:
            files.release_soon()  # it only answered what is on the way
            return await write_layer(runtime, build, owner, lease)
        if single_file and await files.is_dir(dest):
            sources = [replace(sources[0], dest=posixpath.join(dest, sources[0].name))]
            single_file = False
        parents = await files.missing_parents(posixpath.dirname(dest) if single_file else dest)
        return await put_into(files, parents, sources, owner, work, lease)


async def put_into(files: ImageFiles, parents: list[str], sources: list[Source], owner: Ownership, work: Path,
                   lease: str) -> NewLayer:
    """The layer of `parents` (directories the image lacks, outermost first) and `sources` put into `files`."""
    tar_path = await write_tar(lambda tar: _fill(tar, parents, sources), owner, work)
    await files.put(tar_path)
    diff = await files.runtime.compare(files.snapshotter, files.snapshot_key, commit=True, lease=lease)
    return NewLayer(diff.descriptor.model_dump(exclude_none=True), diff.diff_id)


def _fill(tar: CopyTar, parents: list[str], sources: list[Source]) -> None:
    for parent in parents:
        tar.directory(parent)
    for source in sources:
        tar.add(source)
