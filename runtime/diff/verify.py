"""A layer's uncompressed digest (its diff_id), computed from compressed chunks as they arrive.

Run beside the download, it moves the costly second hash off the sequential
unpack path: a blob whose digest and diff_id both verified decompresses to the
same bytes every time, so unpacking it need not hash them again.
"""
from __future__ import annotations

import hashlib
import zlib
from typing import Any

import zstandard

from runtime.errors import DataLoss


class DiffDigester:
    def __init__(self, compression: str) -> None:
        self._compression = compression
        self._hash = hashlib.sha256()
        self._dec: Any = self._new()

    def _new(self) -> Any:
        if self._compression == "gzip":
            return zlib.decompressobj(wbits=31)
        if self._compression == "zstd":
            return zstandard.ZstdDecompressor().decompressobj()
        return None

    def feed(self, data: bytes) -> None:
        if self._dec is None:
            self._hash.update(data)
            return
        try:
            while data:
                self._hash.update(self._dec.decompress(data))
                # Concatenated gzip members / zstd frames: start over on what is left.
                data = self._dec.unused_data if self._dec.eof else b""
                if data:
                    self._dec = self._new()
        except (zlib.error, zstandard.ZstdError) as e:
            raise DataLoss(f"corrupt {self._compression} layer data: {e}") from e

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
