"""Push: a local image's blobs and manifests to a registry, as containerd's transfer service pushes.

Order is what registries check: every blob of a manifest (layers and config) before the manifest, every
child manifest of an index before the index. Each blob is asked for first (HEAD: present means nothing to
send); a blob known to live in another repository of the same registry (the distribution source labels a
pull or an earlier push left, runtime/transfer/sources.py) is mounted from there; the rest is uploaded,
small blobs in one PUT and large ones in PATCHed chunks read from the content store a chunk at a time.
Uploads run concurrently, bounded per push. Nothing is written locally but the source labels.

Pushing an index needs every child manifest it lists to be present here, since a registry refuses an index
whose manifests it does not hold; with `platform`, only that platform's manifest is pushed, under the tag.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, BinaryIO


from runtime.errors import DataLoss, FailedPrecondition, InvalidArgument, NotFound
from runtime.metadata.content import ContentService
from runtime.metadata.images import ImageStore
from runtime.oci import INDEX_TYPES, MANIFEST_TYPES, Descriptor, descriptor, json_object
from runtime.reference import Reference, parse
from runtime.remotes.auth import Credentials
from runtime.remotes.platforms import select_manifest
from runtime.remotes.uploads import Uploads
from runtime.transfer import sources
from runtime.transfer.progress import BlobProgress, PullProgress
from runtime.transfer.registry import HostsOverride, RemoteFactory

log = logging.getLogger("runtime.transfer")

# Up to this size a blob goes in one request; larger ones in chunks of CHUNK, so memory stays bounded.
MONOLITHIC_MAX = 4 << 20
CHUNK = 4 << 20


class _Push:
    """One push's state: where it goes, its progress, and one upload task per blob digest."""

    def __init__(self, content: ContentService, uploads: Uploads, host: str, progress: PullProgress,
                 slots: asyncio.Semaphore) -> None:
        self.content = content
        self.uploads = uploads
        self.host = host
        self.progress = progress
        self._slots = slots
        self._blobs: dict[str, asyncio.Task[None]] = {}

    def report(self, bp: BlobProgress, status: str, **extra: Any) -> None:
        bp.status = status
        self.progress.emit({**bp.wire(), **extra})

    async def manifest(self, desc: Descriptor, locator: str) -> None:
        """The manifest's blobs, then the manifest under `locator` (a tag, or its digest)."""
        body = await self.read_local(desc.digest, "manifest")
        doc = json_object(body, "manifest")
        blobs = [(descriptor(doc.get("config"), "config"), "config")]
        blobs += [(descriptor(layer, "layer"), "layer") for layer in doc.get("layers") or []]
        tasks = []
        for blob, kind in blobs:
            # Manifests of one index share blobs: each is sent once, and every manifest waits for it.
            task = self._blobs.get(blob.digest)
            if task is None:
                task = self._blobs[blob.digest] = asyncio.create_task(self._blob(blob, kind))
            tasks.append(task)
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.put(desc, body, locator, "manifest")

    async def put(self, desc: Descriptor, body: bytes, locator: str, kind: str) -> None:
        bp = self.progress.blob(desc.digest, kind, desc.size)
        stored = await self.uploads.put_manifest(locator, desc.mediaType, body)
        if stored and stored != desc.digest:
            raise DataLoss(f"{self.uploads.endpoint.host} stored {kind} {desc.digest} as {stored}")
        bp.current = desc.size
        self.report(bp, "done")
        await sources.record(self.content, [desc.digest], self.host, self.uploads.repository)

    async def read_local(self, digest: str, what: str) -> bytes:
        try:
            return await self.content.read(digest)
        except NotFound:
            raise FailedPrecondition(f"{what} {digest} is not present locally") from None

    async def _blob(self, desc: Descriptor, kind: str) -> None:
        bp = self.progress.blob(desc.digest, kind, desc.size)
        try:
            info = await self.content.info(desc.digest)
        except NotFound:
            raise FailedPrecondition(f"{kind} {desc.digest} is not present locally") from None
        if self._slots.locked():
            self.report(bp, "waiting")
        async with self._slots:
            self.report(bp, "checking")
            if await self.uploads.has_blob(desc.digest):
                bp.current = desc.size
                self.report(bp, "exists")
            else:
                await self._send(desc, bp, info.labels)
        await sources.record(self.content, [desc.digest], self.host, self.uploads.repository)

    async def _send(self, desc: Descriptor, bp: BlobProgress, labels: dict[str, str]) -> None:
        others = [r for r in sources.repositories(labels, self.host) if r != self.uploads.repository]
        location = None
        if others:
            # The most recent source first: the likeliest still to hold it. A refused mount opens an upload.
            location = await self.uploads.mount(desc.digest, others[-1])
            if location is None:
                bp.current = desc.size
                self.report(bp, "mounted", **{"from": others[-1]})
                return
        if location is None:
            location = await self.uploads.start(desc.digest)
        self.report(bp, "uploading")
        path = self.content.path(desc.digest)
        if desc.size <= MONOLITHIC_MAX:
            data = await asyncio.to_thread(path.read_bytes)
            await self.uploads.put_whole(location, desc, data)
        else:
            def sent(offset: int) -> None:
                bp.current = offset
                self.report(bp, "uploading")

            await self.uploads.put_chunks(location, desc, _chunks(path.open("rb")), sent)
        bp.current = desc.size
        self.report(bp, "done")


async def _chunks(fh: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(fh.read, CHUNK):
            yield chunk
    finally:
        fh.close()


class Pusher:
    def __init__(self, content: ContentService, images: ImageStore, remotes: RemoteFactory,
                 max_concurrent: int = 3) -> None:
        self._content = content
        self._images = images
        self._remotes = remotes
        self._max_concurrent = max_concurrent

    async def push(self, name: str, ref: str | None, progress: PullProgress, *, plain_http: bool = False,
                   hosts: HostsOverride | None = None, credentials: Credentials | None = None,
                   platform: str | None = None) -> Descriptor:
        """Push local image `name` as `ref` (default: its own name); the descriptor the registry now holds."""
        image = await self._images.find(name)
        target = parse(ref or image.name)
        # Registry mirrors serve pulls only: a push goes to the registry the reference names.
        config = self._remotes.hosts_config(plain_http, HostsOverride(insecure=(hosts or HostsOverride()).insecure))
        origin = config.endpoints_for(target.domain)[-1]
        uploads = Uploads(self._remotes.transport(config), origin, target, credentials)
        job = _Push(self._content, uploads, target.domain, progress, asyncio.Semaphore(self._max_concurrent))
        root = image.target
        progress.emit({"status": "pushing", "name": str(target), "digest": root.digest,
                       "mediaType": root.mediaType, "repository": origin.host + "/" + target.repository_path})
        if root.mediaType in INDEX_TYPES:
            body = await job.read_local(root.digest, "index")
            index = json_object(body, "index")
            if platform:
                chosen = _platform_manifest(index, platform)
                await job.manifest(chosen, _locator(target, chosen))
                pushed = chosen
            else:
                children = [descriptor(m, "manifest") for m in index.get("manifests") or []]
                missing = [c.digest for c in children if not await self._content.has(c.digest)]
                if missing:
                    raise FailedPrecondition(
                        f"index {root.digest} lists manifests that are not present locally ({', '.join(missing)}); "
                        "push one platform instead")
                for child in children:
                    await job.manifest(child, child.digest)
                await job.put(root, body, _locator(target, root), "index")
                pushed = root
        elif root.mediaType in MANIFEST_TYPES:
            await job.manifest(root, _locator(target, root))
            pushed = root
        else:
            raise InvalidArgument(f"unsupported manifest media type {root.mediaType!r}")
        log.info("push name=%s ref=%s digest=%s", name, target, pushed.digest)
        return pushed


def _locator(target: Reference, desc: Descriptor) -> str:
    if target.digest is not None and target.digest != desc.digest:
        raise InvalidArgument(f"cannot push {desc.digest} as {target}: the digest differs")
    return target.tag or desc.digest


def _platform_manifest(index: dict[str, Any], platform: str) -> Descriptor:
    parts = platform.split("/")
    if len(parts) < 2 or not all(parts):
        raise InvalidArgument(f"invalid platform {platform!r}: expected os/arch[/variant]")
    return select_manifest(index, os=parts[0], arch=parts[1], variant=parts[2] if len(parts) > 2 else None)
