"""Content writes through the runtime (containerd's content Writer, over HTTP), and image unpack.

An ingest is named by a ref the caller picks: `open_ingest` opens it or finds it where an
earlier attempt stopped (`IngestStatus.offset`), `write_ingest` appends a streamed body at
that offset (any other offset is a Conflict naming the current one; 0 starts over),
`commit_ingest` publishes the bytes only if their size and digest are the expected ones
(else DataLoss, and nothing is stored), with the GC refs the new blob holds (a manifest
its config and layers, a config its unpacked snapshot). `write_content` does all three,
resuming a bytes payload where the ingest stopped and hashing a streamed one on the way
when no digest is given. Pass a lease: committed content that nothing references is the
collector's. `unpack_image` turns an image whose content is all present into snapshots,
so images made from written content can run.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Protocol
from urllib.parse import quote

from runtime.client.records import ContentInfo, _Record
from runtime.client.transport import Transport

# Chunks at least this big are hashed in a thread, so a big payload never stalls the caller's loop.
_HASH_IN_THREAD = 256 * 1024


class IngestStatus(_Record):
    ref: str
    offset: int
    total: int
    expected: str | None
    updated: float


class Unpacked(_Record):
    image: str
    snapshotter: str
    chain_id: str | None
    unpacked: int


def _path(ref: str) -> str:
    return f"/content/ingests/{quote(ref, safe='')}"


class IngestAPI(Protocol):
    async def open_ingest(self, ref: str, *, expected: str | None = None, total: int | None = None,
                          namespace: str | None = None, lease: str | None = None) -> IngestStatus: ...

    async def write_ingest(self, ref: str, offset: int, data: bytes | AsyncIterable[bytes], *,
                           namespace: str | None = None) -> IngestStatus: ...

    async def commit_ingest(self, ref: str, size: int, digest: str, *, refs: Sequence[tuple[str, str]] = (),
                            labels: dict[str, str] | None = None, namespace: str | None = None,
                            lease: str | None = None) -> ContentInfo: ...

    async def abort_ingest(self, ref: str, *, namespace: str | None = None) -> None: ...

    async def write_content(self, ref: str, data: bytes | AsyncIterable[bytes], *, expected: str | None = None,
                            size: int | None = None, refs: Sequence[tuple[str, str]] = (),
                            labels: dict[str, str] | None = None, namespace: str | None = None,
                            lease: str | None = None) -> ContentInfo: ...

    async def unpack_image(self, name: str, snapshotter: str | None = None,
                           namespace: str | None = None) -> Unpacked: ...


class _Hashed:
    """A streamed payload, hashed and counted as it is sent."""

    def __init__(self, data: AsyncIterable[bytes]) -> None:
        self._data = data
        self.hash = hashlib.sha256()
        self.size = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._data:
            if len(chunk) >= _HASH_IN_THREAD:
                await asyncio.to_thread(self.hash.update, chunk)
            else:
                self.hash.update(chunk)
            self.size += len(chunk)
            yield chunk


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class IngestClient(Transport):
    async def open_ingest(self, ref: str, *, expected: str | None = None, total: int | None = None,
                          namespace: str | None = None, lease: str | None = None) -> IngestStatus:
        """Open `ref` or resume it: the status's offset is where the next write must start."""
        return await self._record(IngestStatus, "POST", "/content/ingests",
                                  json_body={"ref": ref, "expected": expected, "total": total},
                                  namespace=namespace, lease=lease)

    async def ingest_status(self, ref: str, *, namespace: str | None = None) -> IngestStatus:
        return await self._record(IngestStatus, "GET", _path(ref) + "/status", namespace=namespace)

    async def write_ingest(self, ref: str, offset: int, data: bytes | AsyncIterable[bytes], *,
                           namespace: str | None = None) -> IngestStatus:
        """Append `data` at `offset` (streamed, chunked); the ingest's new status."""
        resp = await self._send("PUT", _path(ref), None, {"offset": str(offset)}, namespace, None,
                                raw=_once(data) if isinstance(data, bytes) else data)
        if resp.status >= 400:
            await self._raise(resp)
        return IngestStatus.model_validate_json(await resp.read())

    async def commit_ingest(self, ref: str, size: int, digest: str, *, refs: Sequence[tuple[str, str]] = (),
                            labels: dict[str, str] | None = None, namespace: str | None = None,
                            lease: str | None = None) -> ContentInfo:
        """Publish the ingest as blob `digest`; refs are (kind, target): ("content", digest) or
        ("snapshot", "<snapshotter>/<key>")."""
        body = {"size": size, "digest": digest, "refs": [{"kind": k, "target": t} for k, t in refs],
                "labels": labels or {}}
        return await self._record(ContentInfo, "POST", _path(ref) + "/commit", json_body=body,
                                  namespace=namespace, lease=lease)

    async def abort_ingest(self, ref: str, *, namespace: str | None = None) -> None:
        await self.request("DELETE", _path(ref), namespace=namespace)

    async def write_content(self, ref: str, data: bytes | AsyncIterable[bytes], *, expected: str | None = None,
                            size: int | None = None, refs: Sequence[tuple[str, str]] = (),
                            labels: dict[str, str] | None = None, namespace: str | None = None,
                            lease: str | None = None) -> ContentInfo:
        """Open (or resume), write and commit one blob; its digest is computed here when not `expected`."""
        if isinstance(data, bytes):
            size = len(data) if size is None else size
            if expected is None:
                expected = "sha256:" + (await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest()))
        status = await self.open_ingest(ref, expected=expected, total=size, namespace=namespace, lease=lease)
        if isinstance(data, bytes):
            offset = status.offset if status.offset <= len(data) else 0
            if offset < len(data) or status.offset != offset:
                await self.write_ingest(ref, offset, data[offset:], namespace=namespace)
            assert expected is not None and size is not None
            return await self.commit_ingest(ref, size, expected, refs=refs, labels=labels, namespace=namespace,
                                            lease=lease)
        # A stream cannot be rewound to the ingest's offset: it is written from the start.
        if expected is not None and size is not None:
            # Known already (the caller hashed it while writing it): the runtime verifies both at commit.
            await self.write_ingest(ref, 0, data, namespace=namespace)
            return await self.commit_ingest(ref, size, expected, refs=refs, labels=labels, namespace=namespace,
                                            lease=lease)
        hashed = _Hashed(data)
        await self.write_ingest(ref, 0, hashed, namespace=namespace)
        return await self.commit_ingest(ref, hashed.size if size is None else size,
                                        expected or "sha256:" + hashed.hash.hexdigest(), refs=refs, labels=labels,
                                        namespace=namespace, lease=lease)

    async def unpack_image(self, name: str, snapshotter: str | None = None,
                           namespace: str | None = None) -> Unpacked:
        """Unpack an image whose content is all present into snapshots (nothing to do when it already is)."""
        return await self._record(Unpacked, "POST", f"/images/{quote(name, safe='/:@')}/unpack",
                                  json_body={"snapshotter": snapshotter}, namespace=namespace)
