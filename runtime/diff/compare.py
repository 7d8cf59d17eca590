"""Diff service Compare: a layer blob from what a snapshot changed over a parent.

The snapshot's tree and its parent's are found from their mounts, as containerd's walking
differ finds them: an active overlay snapshot on its own parent has an upperdir holding just
the changes, and a committed one's view lists its own dir above its parent's lowerdirs, so
either is read directly (overlay_changes); anything else (the native snapshotter, a parent
other than the snapshot's own) is a walk of both trees, mounted where they are not plain
directories (tree_changes). The layer is streamed into the content store under the
request's lease and recorded with its uncompressed digest (containerd's label). A
container's snapshot (key = its id) leaves out the mount points runc made for the spec's
mounts, as Docker's init layer hides them.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path

from pydantic import BaseModel

from runtime import mount as mountlib
from runtime.content.local import LocalWriter
from runtime.diff.adopt import commit_changes
from runtime.diff.layer_changes import Event, hidden_parts
from runtime.diff.layer_writer import LayerDigests, write_layer
from runtime.diff.overlay_changes import overlay_walk
from runtime.diff.tree_changes import tree_walk
from runtime.errors import InvalidArgument, NotFound, Unavailable
from runtime.metadata.containers import ContainerStore
from runtime.metadata.content import ContentService
from runtime.metadata.snapshots import SnapshotService
from runtime.mount import Mount
from runtime.namespaces import require_namespace
from runtime.oci import (
    MT_DOCKER_LAYER,
    MT_DOCKER_LAYER_GZIP,
    MT_OCI_LAYER,
    MT_OCI_LAYER_GZIP,
    MT_OCI_LAYER_ZSTD,
    Descriptor,
)
from runtime.rootfs.view import absolute
from runtime.snapshots.snapshotter import Kind

UNCOMPRESSED_LABEL = "containerd.io/uncompressed"
COMPRESSIONS = {MT_OCI_LAYER_GZIP: "gzip", MT_OCI_LAYER: "none", MT_OCI_LAYER_ZSTD: "zstd",
                MT_DOCKER_LAYER_GZIP: "gzip", MT_DOCKER_LAYER: "none"}


def _upper_is_whole() -> bool:
    """False where overlayfs may keep a renamed dir or a metadata-only copy-up as a pointer into the lower
    layers (redirect_dir, metacopy): there an upper dir does not hold every changed byte."""
    for param in ("redirect_dir", "metacopy"):
        try:
            with open(f"/sys/module/overlay/parameters/{param}") as fh:
                if fh.read().strip() not in ("N", "off"):
                    return False
        except OSError:
            continue
    return True


class LayerDiff(BaseModel):
    descriptor: Descriptor
    diff_id: str
    # With `commit`: the chainID the snapshot's changes were committed as (runtime/diff/adopt.py), or None.
    committed: str | None = None


Walk = Callable[[], Generator[Event, None, None]]


def _upperdir(upper: list[Mount], parent_layers: list[str] | None) -> tuple[str, list[str]] | None:
    """(the dir holding exactly the snapshot's changes over its own parent, the parent's layers), if its
    mounts show them."""
    if len(upper) != 1:
        return None
    dirs = mountlib.overlay_dirs(upper[0])
    if dirs is not None:
        return dirs
    if upper[0].type != "overlay":
        return None
    lowers = [o.split("=", 1)[1].split(":") for o in upper[0].options if o.startswith("lowerdir=")]
    # A view of a committed snapshot: its own dir above its parent's layers.
    if lowers and parent_layers is not None and lowers[0][1:] == parent_layers and len(lowers[0]) > 1:
        return lowers[0][0], lowers[0][1:]
    return None


def _layers(mounts: list[Mount]) -> list[str] | None:
    """The overlay layers (topmost first) a read-only view of the parent shows, if it is made of them."""
    if len(mounts) != 1:
        return None
    m = mounts[0]
    if mountlib.is_bind(m):
        return [m.source]
    if m.type == "overlay" and mountlib.overlay_dirs(m) is None:
        return next((o.split("=", 1)[1].split(":") for o in m.options if o.startswith("lowerdir=")), None)
    return None


class Comparer:
    def __init__(self, content: ContentService, snapshots: dict[str, SnapshotService], containers: ContainerStore,
                 scratch: Path) -> None:
        self._content = content
        self._snapshots = snapshots
        self._containers = containers
        self._scratch = scratch
        self._upper_is_whole = _upper_is_whole()

    async def cleanup(self) -> None:
        """Unmount and drop what a killed daemon left of its temporary mounts."""
        self._scratch.mkdir(parents=True, exist_ok=True)
        await mountlib.unmount_all_under_async(str(self._scratch), detach=True)

    async def _hidden(self, key: str) -> set[tuple[str, ...]]:
        try:
            c = await self._containers.get(key)
        except NotFound:
            return set()
        if c.snapshot_key != key:
            return set()
        return hidden_parts({absolute(m.get("destination", "")) for m in c.spec.get("mounts") or []})

    @contextlib.asynccontextmanager
    async def _view(self, service: SnapshotService, parent: str | None) -> AsyncIterator[list[Mount] | None]:
        if parent is None:
            yield None
            return
        key = f"compare-{secrets.token_hex(6)}"
        mounts = await service.view(key, parent, {"io.pyengine.compare": "view"})
        try:
            yield mounts
        finally:
            await service.remove(key)

    @contextlib.asynccontextmanager
    async def _trees(self, service: SnapshotService, key: str, parent: str | None,
                     own_parent: str | None) -> AsyncIterator[tuple[Walk, str | None, set[tuple[str, ...]]]]:
        """How to walk the snapshot's changes over `parent`, valid for the duration of the block; the
        active snapshot's upper dir when that walk reads exactly it; the mount points left out."""
        hidden = await self._hidden(key)
        info = await service.stat(key)
        async with contextlib.AsyncExitStack() as stack:
            if info.kind is Kind.ACTIVE:
                upper = await service.mounts(key)
            elif info.kind is Kind.COMMITTED:
                upper_view = await stack.enter_async_context(self._view(service, key))
                assert upper_view is not None
                upper = upper_view
            else:
                raise InvalidArgument(f"snapshot {key!r} is a view: compare an active or committed snapshot")
            lower = await stack.enter_async_context(self._view(service, parent))
            if parent == own_parent and self._upper_is_whole:
                dirs = _upperdir(upper, _layers(lower) if lower is not None else [])
                if dirs is not None:
                    yield (lambda: overlay_walk(dirs[0], dirs[1], hidden),
                           dirs[0] if info.kind is Kind.ACTIVE else None, hidden)
                    return
            yield lambda: self._tree_walk(upper, lower, hidden), None, hidden

    def _tree_walk(self, upper: list[Mount], lower: list[Mount] | None,
                   hidden: set[tuple[str, ...]]) -> Generator[Event, None, None]:
        with contextlib.ExitStack() as stack:
            new = self._plain(stack, upper)
            old = None if lower is None else self._plain(stack, lower)
            yield from tree_walk(new, old, hidden)

    def _plain(self, stack: contextlib.ExitStack, mounts: list[Mount]) -> str:
        if len(mounts) == 1 and mountlib.is_bind(mounts[0]):
            return mounts[0].source
        if len(mounts) == 1 and (dirs := mountlib.overlay_dirs(mounts[0])) is not None:
            # A running container's upperdir must not be mounted twice as an upper: read it as a lower.
            options = [o for o in mounts[0].options if o.split("=", 1)[0] not in ("upperdir", "workdir", "lowerdir")]
            mounts = [Mount(type="overlay", source="overlay", options=[*options, "lowerdir=" + ":".join([dirs[0],
                                                                                                  *dirs[1]])])]
        return stack.enter_context(mountlib.mounted(mounts, str(self._scratch)))

    async def compare(self, snapshotter: str, key: str, parent: str | None, media_type: str,
                      ref: str | None, commit: bool = False) -> LayerDiff:
        service = self._snapshots.get(snapshotter)
        if service is None:
            raise InvalidArgument(f"snapshotter {snapshotter!r} is not loaded")
        compression = COMPRESSIONS.get(media_type)
        if compression is None:
            raise InvalidArgument(f"unsupported layer media type {media_type!r}: expected one of "
                                  + ", ".join(COMPRESSIONS))
        own_parent = (await service.stat(key)).parent
        base = own_parent if parent is None else parent or None
        ingest = f"{require_namespace()}/{ref or 'compare-' + secrets.token_hex(8)}"
        async with self._trees(service, key, base, own_parent) as (walk, upper, hidden):
            writer = await self._content.writer(ingest, None, 0)
            stop = threading.Event()
            work = asyncio.ensure_future(asyncio.to_thread(_write, walk, writer, compression, stop))
            try:
                try:
                    digests = await asyncio.shield(work)
                except asyncio.CancelledError:
                    # The walk stops at its next entry; its views and mounts go only once it has.
                    stop.set()
                    await asyncio.gather(work, return_exceptions=True)
                    raise
                await self._content.commit(writer, digests.size, digests.digest)
            except BaseException:
                await asyncio.to_thread(writer.close)
                await self._content.abort(ingest)
                raise
        await self._content.set_label(digests.digest, UNCOMPRESSED_LABEL, digests.diff_id)
        committed = None
        if commit and base == own_parent:
            committed = await commit_changes(service, key, own_parent, upper, hidden, digests.diff_id)
        return LayerDiff(descriptor=Descriptor(mediaType=media_type, digest=digests.digest, size=digests.size),
                         diff_id=digests.diff_id, committed=committed)


def _until(events: Generator[Event, None, None], stop: threading.Event) -> Iterator[Event]:
    # Closed here, not by the garbage collector: the walk's mounts go before the caller removes its views.
    with contextlib.closing(events):
        for ev in events:
            if stop.is_set():
                raise Unavailable("compare cancelled: the client went away")
            yield ev


def _write(walk: Walk, writer: LocalWriter, compression: str, stop: threading.Event) -> LayerDigests:
    if writer.offset:
        writer.truncate()
    return write_layer(_until(walk(), stop), writer, compression)
