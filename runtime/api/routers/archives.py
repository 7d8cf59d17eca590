"""Image archives: export image records as one tar, import a tar streamed in (docker save / docker load)."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import BaseModel

from runtime.api.routing import Router, Stream
from runtime.api.streams import ClientDisconnect, thread_body, upload
from runtime.errors import InvalidArgument
from runtime.services import Services
from runtime.transfer import exporter
from runtime.transfer.importer import ImportedImage, Importer, ImportOptions

router = Router("/images", tags=("images",))

TAR = "application/x-tar"


class ImportResult(BaseModel):
    images: list[ImportedImage]


async def _nothing() -> None:
    return None


@router.post("/export")
async def export_images(body: exporter.ExportRequest, s: Services) -> Stream:
    """A tar of the images: an OCI layout, plus manifest.json and repositories in the `docker` format."""
    plan = await exporter.plan(s.content, s.images, body)
    chunks = thread_body(lambda out: exporter.write(out, plan, s.content.path), _nothing, exporter.CHUNK)
    return Stream(chunks, TAR)


@router.post("/import", writes=True)
async def import_images(request: web.Request, s: Services, snapshotter: str | None = None, unpack: bool = True,
                        platform: str | None = None, all_platforms: bool = False,
                        records: bool = True) -> ImportResult:
    """Import the archive in the body (docker-archive or OCI layout, plain or gzip), streamed, never spooled.

    With `records=false` nothing is named and the request's lease holds what was imported: the caller
    names the images by its own rules, then drops its lease.
    """
    opts = ImportOptions(snapshotter=snapshotter, unpack=unpack, platform=platform, all_platforms=all_platforms,
                         records=records)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upload(request):
                yield chunk
        except ClientDisconnect:
            raise InvalidArgument("invalid archive: the upload ended before the archive did") from None

    stream = body()
    images = await Importer(s.content, s.snapshots, s.default_snapshotter, s.images, s.leases,
                            s.collector).run(stream, opts)
    # What follows the tar's end-of-archive blocks (padding) is read, so the connection stays usable.
    async for _ in stream:
        pass
    return ImportResult(images=images)
