"""One image's records by the digest they point at (the runtime's `GET /images?digest=`).

The engine names an image by its target (a build step, a cache hit, a just-written image) and wants
every name it has: asking for that digest reads a few rows instead of listing every record, which
grows with the build cache.
"""
from __future__ import annotations

from typing import Protocol

from runtime.client.records import Image
from runtime.client.transport import Transport


class ImageLookupAPI(Protocol):
    async def images_by_target(self, digest: str, namespace: str | None = None) -> list[Image]: ...


class ImageLookupClient(Transport):
    async def images_by_target(self, digest: str, namespace: str | None = None) -> list[Image]:
        """The records whose target is the manifest or index `digest` (none: an empty list)."""
        return await self._records(Image, "GET", "/images", params={"digest": digest}, namespace=namespace)
