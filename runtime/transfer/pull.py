"""Pull: lease → resolve → fetch and verify → unpack → image record.

Everything the pull writes is held by its lease until the image record exists;
on failure the lease goes and the collector takes what nothing else holds, so a
failed pull stores nothing. Partial downloads stay in the ingest area (named
by digest) and are resumed by the next pull of the same blob.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any, Protocol

from pydantic import BaseModel, Field

from runtime import malloc
from runtime.errors import InvalidArgument
from runtime.metadata.content import ContentService
from runtime.metadata.gc import Collector
from runtime.metadata.images import Image, ImageStore
from runtime.metadata.leases import PULL_LABEL, LeaseStore, reset_lease, set_lease
from runtime.metadata.snapshots import SnapshotService
from runtime.oci import (
    CONFIG_TYPES,
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    descriptor,
    json_object,
    layer_compression,
    validate_digest,
)
from runtime.reference import parse as parse_reference
from runtime.transfer import sources
from runtime.transfer.fetch import UNCOMPRESSED_LABEL, Fetcher
from runtime.transfer.progress import BlobProgress, PullProgress
from runtime.transfer.unpack import chain_ids, check_diff_ids, unpack_layer

log = logging.getLogger("runtime.transfer")

# A pull killed with the daemon keeps its blobs this long, so a retry resumes.
LEASE_EXPIRY = 24 * 3600

class Remote(Protocol):
    """One image reference at one registry, as the pull needs it."""

    name: str

    async def resolve(self) -> Descriptor: ...

    async def fetch_manifest(self, desc: Descriptor) -> bytes: ...

    async def open_blob(self, desc: Descriptor, offset: int) -> Any: ...

    def select_platform(self, index: dict[str, Any], os: str, arch: str | None, variant: str | None) -> Descriptor: ...


class PullOptions(BaseModel):
    snapshotter: str | None = None
    unpack: bool = True
    platform: str | None = None  # "os/arch[/variant]"; the host's when unset
    # This pull's own bound on parallel layer downloads (the engine's max-concurrent-downloads), under the
    # daemon-wide max_concurrent_downloads.
    max_concurrent_downloads: int | None = Field(default=None, ge=1)


class Puller:
    def __init__(self, content: ContentService, snapshots: dict[str, SnapshotService], default_snapshotter: str,
                 images: ImageStore, leases: LeaseStore, collector: Collector, max_concurrent: int = 4) -> None:
        self._content = content
        self._snapshots = snapshots
        self.default_snapshotter = default_snapshotter
        self._images = images
        self._leases = leases
        self._collector = collector
        self._fetcher = Fetcher(content, max_concurrent)

    def set_max_concurrent(self, downloads: int) -> None:
        self._fetcher.resize(downloads)

    async def pull(self, remote: Remote, opts: PullOptions, progress: PullProgress) -> Image:
        snapshotter = opts.snapshotter or self.default_snapshotter
        if opts.unpack and snapshotter not in self._snapshots:
            raise InvalidArgument(f"snapshotter {snapshotter!r} is not loaded")
        lease = await self._leases.create(labels={PULL_LABEL: remote.name}, expire_after=LEASE_EXPIRY)
        token = set_lease(lease.id)
        ok = False
        try:
            image = await self._pull(remote, opts, snapshotter, progress)
            ok = True
            return image
        finally:
            reset_lease(token)
            await self._leases.delete(lease.id)
            if not ok:
                # Nothing of a failed pull stays visible; what other images share survives.
                await self._collector.collect()
            await malloc.release()

    async def _pull(self, remote: Remote, opts: PullOptions, snapshotter: str, progress: PullProgress) -> Image:
        root = await remote.resolve()
        progress.emit({"status": "resolved", "name": remote.name, "digest": root.digest, "mediaType": root.mediaType})
        os_, arch, variant = "linux", None, None
        if opts.platform:
            parts = opts.platform.split("/")
            if not 2 <= len(parts) <= 3:
                raise InvalidArgument(f"invalid platform {opts.platform!r}: expected os/arch[/variant]")
            os_, arch, variant = parts[0], parts[1], parts[2] if len(parts) == 3 else None

        manifest_desc = root
        manifest_bytes = await self._manifest(remote, root, progress)
        if root.mediaType in INDEX_TYPES:
            index = json_object(manifest_bytes, "index")
            manifest_desc = remote.select_platform(index, os_, arch, variant)
            await self._content.add_refs(root.digest, [("content", manifest_desc.digest)])
            manifest_bytes = await self._manifest(remote, manifest_desc, progress)
        elif root.mediaType not in MANIFEST_TYPES:
            raise InvalidArgument(f"unsupported manifest media type {root.mediaType!r}")

        manifest = json_object(manifest_bytes, "manifest")
        config = descriptor(manifest.get("config"), "config")
        layers = [descriptor(layer, "layer") for layer in manifest.get("layers") or []]
        if config.mediaType not in CONFIG_TYPES:
            raise InvalidArgument(f"unsupported config media type {config.mediaType!r}")
        for layer in layers:
            if layer.mediaType not in LAYER_TYPES:
                raise InvalidArgument(f"unsupported layer media type {layer.mediaType!r}")
        await self._content.add_refs(
            manifest_desc.digest, [("content", config.digest)] + [("content", layer.digest) for layer in layers]
        )

        def report(bp: BlobProgress, status: str | None) -> None:
            progress.update(bp, status)

        cfg_progress = progress.blob(config.digest, "config", config.size)
        await self._fetcher.ensure(config, remote.open_blob, cfg_progress, [], report)
        config_doc = json_object(await self._content.read(config.digest), "image config")
        diff_ids = list((config_doc.get("rootfs") or {}).get("diff_ids") or [])
        check_diff_ids(layers, diff_ids)
        for d in diff_ids:
            validate_digest(d)

        bound = asyncio.Semaphore(opts.max_concurrent_downloads or len(layers) or 1)

        async def download(layer: Descriptor, bp: BlobProgress) -> None:
            async with bound:
                await self._fetcher.ensure(layer, remote.open_blob, bp, [], report,
                                           compression=layer_compression(layer.mediaType) if opts.unpack else None)

        downloads = [asyncio.create_task(download(layer, progress.blob(layer.digest, "layer", layer.size)))
                     for layer in layers]
        try:
            if opts.unpack and layers:
                service = self._snapshots[snapshotter]
                chains = chain_ids(diff_ids)
                parent: str | None = None
                for layer, downloaded, diff_id, chain in zip(layers, downloads, diff_ids, chains):
                    await downloaded
                    bp = progress.blobs[layer.digest]
                    bp.current = 0
                    report(bp, "extracting")
                    info = await self._content.info(layer.digest)
                    verified = info.labels.get(UNCOMPRESSED_LABEL) == diff_id
                    await unpack_layer(service, layer, str(self._content.path(layer.digest)), diff_id, chain, parent,
                                       verified)
                    bp.current = bp.total  # all of it read: dockerd's extraction bar ends full too
                    report(bp, None)
                    report(bp, "done")
                    parent = chain
                await self._content.add_refs(config.digest, [("snapshot", f"{snapshotter}/{chains[-1]}")])
            else:
                await asyncio.gather(*downloads)
        finally:
            for t in downloads:
                t.cancel()
            await asyncio.gather(*downloads, return_exceptions=True)

        # Where these blobs live, so a push to another repository of that registry can mount them.
        origin = parse_reference(remote.name)
        await sources.record(self._content, [root.digest, manifest_desc.digest, config.digest,
                                             *(layer.digest for layer in layers)], origin.domain, origin.path)
        image = await self._images.put(Image(name=remote.name, target=root))
        log.info("pull name=%s digest=%s layers=%d snapshotter=%s", remote.name, root.digest, len(layers), snapshotter)
        return image

    async def _manifest(self, remote: Remote, desc: Descriptor, progress: PullProgress) -> bytes:
        if await self._content.hold(desc.digest):
            return await self._content.read(desc.digest)
        data = await remote.fetch_manifest(desc)
        bp = progress.blob(desc.digest, "manifest", len(data))
        # Manifests are small and already in memory: no resume, so each pull
        # writes its own ingest and concurrent pulls never contend for a ref.
        writer = await self._content.writer(f"manifest-{desc.digest}-{secrets.token_hex(4)}", desc.digest, len(data))
        try:
            await asyncio.to_thread(writer.write, data)
            await self._content.commit(writer, len(data), desc.digest)
        finally:
            await asyncio.to_thread(writer.close)
        bp.current = len(data)
        progress.update(bp, "done")
        return data
