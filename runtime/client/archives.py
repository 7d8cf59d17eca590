"""Image archives through the runtime API: export images as one tar, import a tar (docker save / docker load).

Both directions stream: an export is read as it is written (an async context manager yields the
bytes, like a container's export), an import sends the caller's byte iterator chunked and answers
once every blob is verified, unpacked and (unless `records=False`) named. With `records=False` the
caller names the images itself and must hold what was imported with a lease of its own until then.
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import AsyncIterator, Literal, Protocol

from pydantic import Field

from runtime.client.http import ProtocolError
from runtime.client.records import Descriptor, _Record
from runtime.client.transport import Transport, _parse
from runtime.errors import Unavailable

ArchiveFormat = Literal["docker", "oci"]


class ImportedImage(_Record):
    """One image an archive held: its names (normalised references), root descriptor and config digest."""

    names: list[str] = Field(default_factory=list)
    target: Descriptor
    config: str
    layers: list[Descriptor] = Field(default_factory=list)
    parent: str = ""  # the config digest the archive gives as the image's Parent, if any


class ImportResult(_Record):
    images: list[ImportedImage]


class ArchiveAPI(Protocol):
    def export_images(self, names: list[str], *, unnamed: list[str] | None = None, format: ArchiveFormat = "docker",
                      platform: str | None = None, parents: dict[str, str] | None = None,
                      namespace: str | None = None) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    async def import_images(self, data: AsyncIterable[bytes], *, snapshotter: str | None = None, unpack: bool = True,
                            platform: str | None = None, all_platforms: bool = False, records: bool = True,
                            namespace: str | None = None, lease: str | None = None) -> list[ImportedImage]: ...


class ArchiveClient(Transport):
    @asynccontextmanager
    async def export_images(self, names: list[str], *, unnamed: list[str] | None = None,
                            format: ArchiveFormat = "docker", platform: str | None = None,
                            parents: dict[str, str] | None = None,
                            namespace: str | None = None) -> AsyncIterator[AsyncIterator[bytes]]:
        """The bytes of a tar of the named image records (`unnamed`: exported without a name); `parents` (config
        digest -> its parent's) become manifest.json's Parent where both images are in the archive."""
        body = {"names": names, "unnamed": unnamed or [], "format": format, "platform": platform,
                "parents": parents or {}}
        async with self._download("/images/export", None, namespace, method="POST", json_body=body) as (_, chunks):
            yield chunks

    async def import_images(self, data: AsyncIterable[bytes], *, snapshotter: str | None = None, unpack: bool = True,
                            platform: str | None = None, all_platforms: bool = False, records: bool = True,
                            namespace: str | None = None, lease: str | None = None) -> list[ImportedImage]:
        """Import the archive streamed from `data`; the images it held, in its order."""
        params = {"unpack": str(unpack).lower(), "all_platforms": str(all_platforms).lower(),
                  "records": str(records).lower()}
        if snapshotter:
            params["snapshotter"] = snapshotter
        if platform:
            params["platform"] = platform
        resp = await self._send("POST", "/images/import", None, params, namespace, lease, raw=data)
        if resp.status >= 400:
            await self._raise(resp)
        try:
            raw = await resp.read()
        except (OSError, ProtocolError) as e:
            raise Unavailable(f"lost pyruntimed at {self.address}: {e}") from None
        return list(_parse(ImportResult, "POST", "/images/import", json.loads(raw)).images)
