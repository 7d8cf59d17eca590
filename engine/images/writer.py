"""Storing a new image: its layer (if any) is already in the content store; this writes its config and
manifest, names it and unpacks it, all under one runtime lease.

Until the image record exists nothing references the new blobs, so the lease is what keeps the
runtime's GC off them; a failure half-way leaves only leased content, which goes with the lease.
The new image starts dangling (named `<none>@<manifest digest>`, as an untagged image is kept) and
takes its tags through ImageService.tag, so tag moves, orphaned images and events follow Docker's rules.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from engine.images.compose import Blob, NewLayer, config_blob, family_of, manifest
from engine.images.leases import new_lease_id
from engine.images.model import DANGLING_PREFIX, LocalImage, Record
from engine.images.store import ImageService
from runtime.client import NotFound as RuntimeNotFound
from runtime.client.blobs import MAX_BLOB, BlobAPI
from runtime.client.ingest import IngestAPI
from runtime.client.protocol import LeaseAPI
from runtime.client.records import Image

# Long enough for a build step's layer to be written and named; a crashed engine's go at its next start.
_LEASE_SECONDS = 6 * 3600.0


class WriterRuntime(IngestAPI, BlobAPI, LeaseAPI, Protocol):
    async def put_image(self, name: str, target: dict[str, Any], labels: dict[str, str] | None = None,
                        namespace: str | None = None) -> Image: ...

    async def remove_image(self, name: str, namespace: str | None = None) -> None: ...


@dataclass(frozen=True)
class Written:
    id: str  # the config digest: Docker's image ID
    target: dict[str, Any]  # the manifest's descriptor
    image: LocalImage  # the new image as written, with the one record this write made
    record: Image  # that record, as the runtime stored it


class LazyLease:
    """A lease taken when first asked for: a build whose steps all come from the cache writes nothing and
    takes none. Asked for by several stages at once, it is one lease."""

    def __init__(self, runtime: LeaseAPI) -> None:
        self._runtime = runtime
        self._made: asyncio.Future[str] | None = None

    async def _create(self) -> str:
        lease = await self._runtime.create_lease(new_lease_id(), _LEASE_SECONDS)
        return str(lease["id"])

    async def id(self) -> str:
        if self._made is None:
            self._made = asyncio.ensure_future(self._create())
        # Shielded: a stage cancelled while the lease is made must not fail the others waiting for it.
        return await asyncio.shield(self._made)

    async def release(self) -> None:
        if self._made is None:
            return
        made, self._made = self._made, None
        try:
            lease = await made
        except Exception:
            return  # never made: nothing to remove (whoever asked for it got the error)
        await self._runtime.remove_lease(lease)


class ImageWriter:
    def __init__(self, runtime: WriterRuntime, images: ImageService) -> None:
        self.runtime = runtime
        self.images = images

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[str]:
        """A lease for content written before an image names it; dropped once the image exists (or failed)."""
        lease = await self.runtime.create_lease(new_lease_id(), _LEASE_SECONDS)
        try:
            yield str(lease["id"])
        finally:
            await self.runtime.remove_lease(str(lease["id"]))

    @contextlib.asynccontextmanager
    async def lazy_lease(self) -> AsyncIterator[LazyLease]:
        """A LazyLease, removed at the end if it was taken."""
        lease = LazyLease(self.runtime)
        try:
            yield lease
        finally:
            await lease.release()

    async def write(self, parent: LocalImage | None, config: dict[str, Any], layer: NewLayer | None, *,
                    lease: str, snapshotter: str | None = None, record: str | None = None,
                    labels: dict[str, str] | None = None) -> Written:
        """Store the config document `config` (a child of `parent`) and its manifest; return the new image.

        `record` names the runtime's record of it (with `labels`); by default it is kept as a dangling image.
        """
        family = family_of(parent.manifest_type if parent is not None else None)
        layers = list(parent.layers) if parent is not None else []
        if layer is not None and not layer.empty:
            layers.append(layer.descriptor)
        config_doc = config_blob(config, family)
        manifest_doc = manifest(config_doc, layers, family)
        # Side by side: under the lease neither needs the other stored first (a ref is only a GC edge).
        await asyncio.gather(self._store(config_doc, [], lease),
                             self._store(manifest_doc, [config_doc.digest] + [str(d["digest"]) for d in layers],
                                         lease))
        name = record or DANGLING_PREFIX + manifest_doc.digest
        stored = await self.runtime.put_image(name, manifest_doc.descriptor, labels)
        try:
            await self.runtime.unpack_image(name, snapshotter)
        except BaseException:
            # A write that failed leaves no image behind (dockerd's neither), for a retry to make a second one;
            # a record this write only updated was another's image already.
            if record is None and stored.created == stored.updated:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.runtime.remove_image(name))
            raise
        parsed_config, parsed_manifest = json.loads(config_doc.data), json.loads(manifest_doc.data)
        # Listing images (docker images, a tag that moves) then describes this one without reading it back.
        self.images.written(config_doc.digest, parsed_config)
        self.images.written(manifest_doc.digest, parsed_manifest)
        image = LocalImage(id=config_doc.digest, config=json.loads(config_doc.data),
                           manifest_digest=manifest_doc.digest, layers=list(parsed_manifest["layers"]),
                           manifest_type=family, records=[Record.from_runtime(stored)])
        return Written(config_doc.digest, manifest_doc.descriptor, image, stored)

    async def name(self, written: Written, repo: str, tag: str) -> str:
        """Tag the new image `repo:tag`; the dangling marker goes once a real name holds the image."""
        name = await self.images.tag(written.id, repo, tag)
        with contextlib.suppress(RuntimeNotFound):
            await self.runtime.remove_image(DANGLING_PREFIX + str(written.target["digest"]))
        return name

    async def _store(self, blob: Blob, children: list[str], lease: str) -> None:
        refs = [("content", d) for d in children]
        if len(blob.data) <= MAX_BLOB:
            await self.runtime.put_blob(blob.data, blob.digest, refs=refs, lease=lease)
            return
        await self.runtime.write_content(f"pyengine-{blob.digest}", blob.data, expected=blob.digest,
                                         size=len(blob.data), refs=refs, lease=lease)

