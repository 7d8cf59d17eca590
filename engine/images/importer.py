"""`docker import`: a root filesystem tarball (plain, gzip, bzip2 or xz) becomes a one-layer image.

The tarball streams from the request (or a URL) into the runtime's content store and is never held
whole: gzip input is stored as it came, as a gzip layer, and only decompressed to learn its diff ID;
plain input is stored as an uncompressed layer; bzip2 and xz, which image layers cannot be, are
decompressed on the way in. The layer's first header is checked, so a file that is not a tar
is refused before any image exists. Decompression and hashing run in threads.
"""
from __future__ import annotations

import asyncio
import bz2
import hashlib
import lzma
import secrets
import tarfile
import zlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from engine.builder.dockerfile.changes import apply_changes
from engine.errors import InvalidArgument
from engine.events import EventBus
from engine.images.compose import NewLayer, child_config, now
from engine.images.make_options import ImportOptions
from engine.images.writer import ImageWriter

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"

_MAGIC: list[tuple[bytes, str]] = [(b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
                                   (b"\x28\xb5\x2f\xfd", "zstd")]


@dataclass
class _Inflater:
    """What the layer's bytes decompress to: hashed for the diff ID, its first block checked as a tar header."""

    decompressor: Any  # zlib's, bz2's or lzma's (decompress(), eof), or None for a plain tar
    store_decompressed: bool
    hash: Any = field(default_factory=hashlib.sha256)
    head: bytes = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to store for `chunk`."""
        try:
            data = self.decompressor.decompress(chunk) if self.decompressor is not None else chunk
        except (zlib.error, lzma.LZMAError, OSError, EOFError) as e:
            raise InvalidArgument(f"the imported file's compressed data is corrupt: {e}") from None
        self.hash.update(data)
        if len(self.head) < tarfile.BLOCKSIZE:
            self.head += data[: tarfile.BLOCKSIZE - len(self.head)]
        return data if self.store_decompressed else chunk

    def finish(self) -> None:
        """At the end of the input: a compressed stream must have ended too."""
        if self.decompressor is not None and not self.decompressor.eof:
            raise InvalidArgument("the imported file's compressed data is cut short: unexpected EOF")

    def check(self) -> None:
        if len(self.head) < tarfile.BLOCKSIZE:
            raise InvalidArgument("the imported file is not a tar archive: it ends before its first header")
        if self.head == bytes(tarfile.BLOCKSIZE):
            return  # an archive with no entries
        try:
            tarfile.TarInfo.frombuf(self.head, tarfile.ENCODING, "surrogateescape")
        except tarfile.HeaderError:
            raise InvalidArgument("archive/tar: invalid tar header: the imported file is not a tar archive") from None


def _inflater(head: bytes) -> tuple[_Inflater, str]:
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), "tar")
    if kind == "gzip":
        return _Inflater(zlib.decompressobj(16 + zlib.MAX_WBITS), store_decompressed=False), GZIP_LAYER
    if kind == "bzip2":
        return _Inflater(bz2.BZ2Decompressor(), store_decompressed=True), TAR_LAYER
    if kind == "xz":
        return _Inflater(lzma.LZMADecompressor(), store_decompressed=True), TAR_LAYER
    if kind == "zstd":
        raise InvalidArgument("zstd-compressed archives cannot be imported: use a plain, gzip, bzip2 or xz tar")
    return _Inflater(None, store_decompressed=True), TAR_LAYER


class Importer:
    def __init__(self, writer: ImageWriter, events: EventBus) -> None:
        self.writer = writer
        self.events = events

    async def import_image(self, data: AsyncIterable[bytes], options: ImportOptions) -> str:
        """The new image's ID."""
        config = apply_changes({}, list(options.changes))
        async with self.writer.lease() as lease:
            layer = await self._store_layer(data, lease)
            doc = child_config(None, config, layer=layer, created=now(),
                               comment=options.message or f"Imported from {options.source}",
                               platform=options.platform)
            written = await self.writer.write(None, doc, layer, lease=lease)
            if options.repo:
                await self.writer.name(written, options.repo, options.tag)
        self.events.image("import", written.id, written.id)
        return written.id

    async def _store_layer(self, data: AsyncIterable[bytes], lease: str) -> NewLayer:
        chunks = aiter(data)
        first = b""
        async for chunk in chunks:
            first += chunk
            if len(first) >= 8:
                break
        if not first:
            # Nothing at all: an empty root filesystem, as dockerd imports it (an archive with no entries).
            first = bytes(2 * tarfile.BLOCKSIZE)
        inflater, media_type = _inflater(first)

        async def stored() -> AsyncIterator[bytes]:
            checked = False
            pending: AsyncIterator[bytes] = _prepend(first, chunks)
            async for chunk in pending:
                out = await asyncio.to_thread(inflater.feed, chunk)
                if not checked and len(inflater.head) >= tarfile.BLOCKSIZE:
                    inflater.check()  # before the rest streams in: a file that is no tar stops here
                    checked = True
                if out:
                    yield out
            if not checked:
                inflater.check()
            inflater.finish()

        info = await self.writer.runtime.write_content(f"pyengine-import-{secrets.token_hex(8)}", stored(),
                                                      lease=lease)
        return NewLayer({"mediaType": media_type, "digest": info.digest, "size": info.size},
                        "sha256:" + inflater.hash.hexdigest())


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk
