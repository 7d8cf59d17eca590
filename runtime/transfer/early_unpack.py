"""Applying an archive's layers while the rest of it is still streaming in.

A docker-archive whose manifest.json comes before its blobs (pyruntimed's exports write the layout
files first) says which config and layers make each image before any layer has arrived. A worker
beside the thread that reads the archive then applies each layer as its bytes arrive: the reading
thread hands them over (a _Tee, bounded) while it stores and hashes them, so receiving a layer and
applying it overlap, where an import that unpacks at its end waits for both in turn. A layer that
arrives while the worker is still busy below it is applied from its stored blob instead.

Nothing is trusted early that the import would check later: a layer is applied only onto its own
chain's parent, and its snapshot is committed under its chainID only once its uncompressed bytes
hash to the config's diff_id and (applied as it streamed) its blob was stored, which it is only when
it matched its digest; the importer's own checks all run afterwards as before.
What is applied early sits under the import's lease like everything else it writes, so a failed
import, or a layer that no image kept ends up using, goes with the lease. Anything unexpected (a
link, a mismatch, an error) just stops the early work: the importer's unpack does what is left and
reports the error in its own words.
"""
from __future__ import annotations

import asyncio
import json
import logging
import queue
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.metadata.content import ContentService
from runtime.metadata.snapshots import SnapshotService
from runtime.mount import Mount
from runtime.errors import AlreadyExists, DataLoss, RuntimeError_
from runtime.oci import MT_DOCKER_LAYER, MT_DOCKER_LAYER_GZIP, MT_OCI_LAYER_ZSTD, Compression, Descriptor
from runtime.transfer.archive_read import Blob, sniff
from runtime.transfer.fetch import UNCOMPRESSED_LABEL
from runtime.transfer.unpack import apply_stream, chain_ids, unpack_layer

log = logging.getLogger("runtime.transfer")

_MEDIA_TYPES = {"none": MT_DOCKER_LAYER, "gzip": MT_DOCKER_LAYER_GZIP, "zstd": MT_OCI_LAYER_ZSTD}
_TEE_DEPTH = 8  # chunks (1 MiB each) the reading thread may run ahead of the applying one


class _Tee:
    """One layer's bytes from the reading thread to the applying one as they arrive, and the blob they made.

    The reading thread feed()s and end()s; the applying thread read()s; close() (on the loop) when the
    applier is done or gone, after which feeds are dropped, so the reading thread never waits on nobody."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_TEE_DEPTH)
        self._data = b""
        self._pos = 0
        self._eof = False
        self._closed = False
        self.stored: asyncio.Future[Blob | None] = loop.create_future()

    def feed(self, chunk: bytes) -> None:
        if not self._closed:
            self._queue.put(chunk)

    def end(self, blob: Blob | None) -> None:
        if not self._closed:
            self._queue.put(None)
        self._loop.call_soon_threadsafe(self._stored, blob)

    def _stored(self, blob: Blob | None) -> None:
        if not self.stored.done():
            self.stored.set_result(blob)

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._data) and not self._eof:
            chunk = self._queue.get()
            self._data, self._pos, self._eof = chunk or b"", 0, chunk is None
        start = self._pos
        self._pos = len(self._data) if size < 0 else min(len(self._data), start + size)
        return self._data if start == 0 and self._pos == len(self._data) else self._data[start:self._pos]

    def compression(self) -> Compression:
        self.read(0)
        return sniff(self._data)

    def close(self) -> None:
        self._closed = True
        self._stored(None)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return


@dataclass
class _Image:
    config: str  # entry names in the archive
    layers: list[str]
    diff_ids: list[str] | None = None  # once its config is stored and read
    done: int = 0  # layers applied (or found already there), bottom up
    claimed: int = 0  # layers done or handed over as they stream in: the next one to stream is layers[claimed]

    def pending(self) -> list[str]:
        """The layers the worker will take next: those handed over, or else the next one."""
        return self.layers[self.done:max(self.claimed, self.done + 1)] if self.diff_ids != [] else []


@dataclass
class _State:
    images: list[_Image] = field(default_factory=list)
    blobs: dict[str, Blob] = field(default_factory=dict)
    tees: dict[str, _Tee] = field(default_factory=dict)  # layers streaming in, by entry name
    seen_blob: bool = False


def _apply_tee(tee: _Tee, mounts: list[Mount], diff_id: str) -> None:
    apply_stream(tee, tee.compression(), mounts, diff_id)


class EarlyUnpacker:
    """Fed from the archive's reading thread (layout(), blob()); applies on the event loop's worker."""

    def __init__(self, content: ContentService, snapshots: SnapshotService,
                 wanted: Callable[[dict[str, Any]], bool]) -> None:
        self._content = content
        self._snapshots = snapshots
        self._wanted = wanted
        self._loop = asyncio.get_running_loop()
        self._state = _State()
        self._changed = asyncio.Event()
        self._stopping = False
        self.applied = 0
        self.streamed = 0  # of which applied as they streamed in
        self._worker = asyncio.ensure_future(self._run())

    # -- from the reading thread -----------------------------------------------------------------

    def layout(self, name: str, data: bytes) -> None:
        self._loop.call_soon_threadsafe(self._on_layout, name, data)

    def start(self, name: str) -> _Tee | None:
        """A _Tee for a file that is the next layer of an image, which the worker will apply as it streams."""
        return asyncio.run_coroutine_threadsafe(self._claim(name), self._loop).result()

    def blob(self, blob: Blob | None) -> None:
        if blob is not None:
            self._loop.call_soon_threadsafe(self._on_blob, blob)

    # -- on the loop -----------------------------------------------------------------------------

    def _on_layout(self, name: str, data: bytes) -> None:
        # Only a manifest.json ahead of every blob plans anything: later, the blobs are all but in.
        if name != "manifest.json" or self._state.seen_blob:
            return
        try:
            items = json.loads(data)
            for item in items:
                layers = item.get("Layers") or []
                if isinstance(item.get("Config"), str) and all(isinstance(p, str) for p in layers):
                    self._state.images.append(_Image(item["Config"], list(layers)))
        except (ValueError, TypeError, AttributeError, RecursionError):
            self._state.images.clear()  # the importer says what is wrong with it
        self._changed.set()

    def _on_blob(self, blob: Blob) -> None:
        self._state.seen_blob = True
        self._state.blobs[blob.name] = blob
        self._changed.set()

    async def _claim(self, name: str) -> _Tee | None:
        if self._stopping or self._worker.done() or name in self._state.tees or name in self._state.blobs:
            return None
        for image in self._state.images:
            if image.diff_ids is None and image.config in self._state.blobs:
                await self._read_config(image)
        # Only an image whose config is read: the worker must be able to take what it is handed at once.
        target = next((i for i in self._state.images if i.diff_ids and
                       max(i.claimed, i.done) < len(i.layers) and i.layers[max(i.claimed, i.done)] == name), None)
        if target is None:
            return None
        target.claimed = max(target.claimed, target.done) + 1
        tee = self._state.tees[name] = _Tee(self._loop)
        self._changed.set()
        return tee

    async def stop(self) -> None:
        """Take no new step and wait for the one in progress; the importer's unpack does the rest."""
        self._stopping = True
        self._changed.set()
        await self._worker

    async def _run(self) -> None:
        try:
            while not self._stopping:
                if not await self._step():
                    self._changed.clear()
                    await self._changed.wait()
                self._close_stale_tees()
        except Exception as e:  # noqa: BLE001 - the importer's own unpack meets and reports it
            log.info("early unpack stopped: %s", e)
        finally:
            for tee in self._state.tees.values():
                tee.close()

    def _close_stale_tees(self) -> None:
        """A tee no image will take next (its image was left out, or the name came twice) is let go."""
        nexts = {name for i in self._state.images for name in i.pending()}
        for name, tee in list(self._state.tees.items()):
            if name not in nexts:
                tee.close()
                del self._state.tees[name]

    async def _step(self) -> bool:
        """Do one thing that is ready; False when nothing is."""
        for image in self._state.images:
            if image.diff_ids is None:
                if image.config in self._state.blobs:
                    await self._read_config(image)
                    return True
                continue
            if image.done < len(image.layers) and image.layers[image.done] in self._state.tees:
                await self._apply_streaming(image, self._state.tees.pop(image.layers[image.done]))
                return True
            if image.done < len(image.layers) and image.layers[image.done] in self._state.blobs:
                await self._apply(image)
                return True
        return False

    async def _read_config(self, image: _Image) -> None:
        try:
            doc = json.loads(await self._content.read(self._state.blobs[image.config].digest))
            diff_ids = (doc.get("rootfs") or {}).get("diff_ids") if isinstance(doc, dict) else None
        except (ValueError, AttributeError, RuntimeError_):
            doc, diff_ids = None, None  # the importer says what is wrong with it
        if not isinstance(doc, dict) or not self._wanted(doc) or not isinstance(diff_ids, list) \
                or len(diff_ids) != len(image.layers):
            image.diff_ids, image.done = [], len(image.layers)  # not for this import: leave it alone
        else:
            image.diff_ids = [str(d) for d in diff_ids]

    async def _apply_streaming(self, image: _Image, tee: _Tee) -> None:
        assert image.diff_ids is not None
        i = image.done
        diff_id = image.diff_ids[i]
        chains = chain_ids(image.diff_ids[: i + 1])
        try:
            if await self._snapshots.exists(chains[-1]):
                image.done += 1
                return  # someone made it: the importer checks this blob against its diff_id
            key = f"extract-{secrets.token_hex(6)} {chains[-1]}"
            mounts = await self._snapshots.prepare(key, chains[-2] if i else None)
            try:
                await asyncio.to_thread(_apply_tee, tee, mounts, diff_id)
                # Named only once the blob it came from is stored: it matched its digest.
                blob = await tee.stored
                if blob is None:
                    raise DataLoss(f"layer {i} was not stored")
                try:
                    await self._snapshots.commit(chains[-1], key)
                except AlreadyExists:
                    await self._snapshots.remove(key)
            except BaseException:
                if await self._snapshots.exists(key):
                    await self._snapshots.remove(key)
                raise
        finally:
            tee.close()
        self.applied += 1
        self.streamed += 1
        if blob.compression != "none":
            await self._content.set_label(blob.digest, UNCOMPRESSED_LABEL, diff_id)
        image.done += 1

    async def _apply(self, image: _Image) -> None:
        assert image.diff_ids is not None
        i = image.done
        blob = self._state.blobs[image.layers[i]]
        diff_id = image.diff_ids[i]
        chains = chain_ids(image.diff_ids[: i + 1])
        if blob.compression == "none" and blob.digest != diff_id:
            raise ValueError(f"layer {i} is not what its config says")
        desc = Descriptor(mediaType=_MEDIA_TYPES[blob.compression], digest=blob.digest, size=blob.size)
        # A compressed layer is hashed while it is applied and committed only if it matches diff_id.
        applied = await unpack_layer(self._snapshots, desc, str(self._content.path(blob.digest)), diff_id,
                                     chains[-1], chains[-2] if i else None, verified=blob.compression == "none")
        if applied:
            self.applied += 1
            if blob.compression != "none":
                await self._content.set_label(blob.digest, UNCOMPRESSED_LABEL, diff_id)
        image.done += 1
