"""A COPY's tar written as the step's layer itself, when what the image has on the way allows it.

The classic way puts the tar into a never-started container and takes the layer back out of the
snapshot with the diff service: four more passes over the bytes. Here the tar is
the layer: one runtime request lists what the image has at every path the tar names (lstat, in the
step's container), and the tar then carries each existing directory on the way to the destination
with the image's own owner, mode and time (what overlayfs' copy-up puts in the classic layer, and what
keeps a `/tmp` 1777 when dockerd applies the layer), the missing ones as the classic copy makes them
(0755, the `--chown` owner), then the files. The runtime applies it when the step's image is stored.

It falls back to the classic way (None) where the two could differ: anything on the way that is a
symlink or not a directory, a directory of the tar where the image has something else, a file of the
tar where the image has a directory or a symlink, a name that a layer would read as a whiteout
(`.wh.`), and ADD's archives (their entries are not known before they are unpacked). One difference is
left: extended attributes of the directories on the way (which overlayfs' copy-up would carry) are not.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import posixpath
import secrets
import stat
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO, cast

from engine.builder.copy_tar import CopyTar, Ownership, Source, walk
from engine.images.compose import NewLayer
from runtime.client import RuntimeError_
from runtime.client.ingest import IngestAPI
from runtime.client.layer_gzip import GZIP_LEVEL, BlockGzip
from runtime.client.path_info import PathEntry, PathInfoAPI

_SLOTS = 4  # 1 MiB blocks of the gzip stream in flight
_WHITEOUT = ".wh."
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


class _Blob:
    """The layer's file, hashed and counted as it is written: the blob's digest and size."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)


class _LayerOut:
    """What the tar writes: hashed (the diff ID) and compressed into the layer's file, in one pass."""

    def __init__(self, blob: _Blob) -> None:
        self.diff = hashlib.sha256()
        self.gzip = BlockGzip(blob, GZIP_LEVEL)

    def write(self, data: bytes) -> int:
        self.diff.update(data)
        return self.gzip.write(data)


class _Stopped(Exception):
    """The runtime side stopped taking the layer's bytes: the writer thread ends here."""


class _Pipe:
    """The layer's bytes from the writer thread to the event loop, at most `_SLOTS` blocks held at once: a
    fast writer waits for the runtime, and the two run side by side."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(_SLOTS)
        self.gone = threading.Event()
        self.ended = False  # the end marker was taken by the event loop's side

    def write(self, data: bytes) -> int:  # the thread's side
        if self.gone.is_set():
            raise _Stopped()
        asyncio.run_coroutine_threadsafe(self.queue.put(bytes(data)), self.loop).result()
        return len(data)

    def end(self) -> None:  # the thread's side, always last
        asyncio.run_coroutine_threadsafe(self.queue.put(None), self.loop).result()

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) is not None:
            yield chunk
        self.ended = True

    async def stop(self) -> None:
        """Make the thread stop at its next write and let it reach its end marker."""
        self.gone.set()
        while not self.ended:
            self.ended = await self.queue.get() is None


async def write_layer(runtime: IngestAPI, build: Callable[[CopyTar], None], owner: Ownership,
                      lease: str) -> NewLayer:
    """Run `build` (in a thread) against a tar that becomes a gzip layer in the content store, under `lease`:
    hashed (diff ID and digest) and compressed as it is written, sent to the runtime as it is made."""
    pipe = _Pipe(asyncio.get_running_loop())

    def work() -> tuple[str, _Blob]:
        try:
            blob = _Blob(cast(BinaryIO, pipe))
            out = _LayerOut(blob)
            tar = CopyTar(cast(BinaryIO, out), owner)
            try:
                build(tar)
            finally:
                tar.close()
            out.gzip.close()
            return "sha256:" + out.diff.hexdigest(), blob
        finally:
            pipe.end()

    worker = asyncio.ensure_future(asyncio.to_thread(work))
    ref = f"pyengine-build-{secrets.token_hex(8)}"
    try:
        await runtime.open_ingest(ref, lease=lease)
        await runtime.write_ingest(ref, 0, pipe.chunks())
        diff_id, blob = await worker
        info = await runtime.commit_ingest(ref, blob.size, "sha256:" + blob.digest.hexdigest(), lease=lease)
    except BaseException:
        await pipe.stop()
        await asyncio.gather(worker, return_exceptions=True)
        with contextlib.suppress(RuntimeError_):
            await asyncio.shield(runtime.abort_ingest(ref))
        raise
    return NewLayer({"mediaType": LAYER_GZIP, "digest": info.digest, "size": info.size}, diff_id)


def ancestors(path: str) -> list[str]:
    """'/a/b/c' → ['/a', '/a/b', '/a/b/c']."""
    out: list[str] = []
    current = posixpath.normpath(path)
    while current not in ("/", ""):
        out.append(current)
        current = posixpath.dirname(current)
    return list(reversed(out))


def listing(sources: list[Source]) -> dict[str, bool] | None:
    """Blocking: every path the sources put in the tar, with whether it is a directory; None when that is not
    known before the tar is written (an archive ADD unpacks)."""
    out: dict[str, bool] = {}
    for source in sources:
        if source.content is not None:
            out["/" + source.dest.strip("/")] = False
            continue
        if source.unpack or source.path is None:
            return None
        st = os.stat(source.path) if source.follow else os.lstat(source.path)
        if not stat.S_ISDIR(st.st_mode):
            out["/" + source.dest.strip("/")] = False
            continue
        for rel, entry in walk(source.path):
            out["/" + posixpath.join(source.dest, rel).strip("/")] = stat.S_ISDIR(os.lstat(entry).st_mode)
    return out


def _plan(parents: list[str], entries: dict[str, bool], found: dict[str, PathEntry]) -> list[PathEntry] | None:
    """The existing directories on the way to the destination, outermost first; None: copy the classic way."""
    existing = []
    for path in parents:
        kind = found[path].kind
        if kind == "dir":
            existing.append(found[path])
        elif kind != "missing":
            return None
    for path, is_dir in entries.items():
        kind = found[path].kind
        if kind != "missing" and kind != ("dir" if is_dir else "file"):
            return None
    return existing


async def direct_plan(runtime: PathInfoAPI, container_id: str, parent: str,
                      sources: list[Source]) -> Callable[[CopyTar], None] | None:
    """What writes the layer of `sources` under directory `parent` of the image in `container_id` (give it to
    write_layer), without putting them there; None where the classic way must do it (see the module's docstring)."""
    entries = await asyncio.to_thread(listing, sources)
    if entries is None or any(posixpath.basename(p).startswith(_WHITEOUT) for p in entries):
        return None
    parents = ancestors(parent)
    paths = list(dict.fromkeys([*parents, *entries]))
    found = dict(zip(paths, await runtime.lstat_paths(container_id, paths)))
    existing = _plan(parents, entries, found)
    if existing is None:
        return None
    missing = [p for p in parents if found[p].kind == "missing"]

    def build(tar: CopyTar) -> None:
        for e in existing:
            tar.existing_directory(e.path, e.mode, e.uid, e.gid, e.mtime)
        for path in missing:
            tar.directory(path)
        for source in sources:
            tar.add(source)

    return build
