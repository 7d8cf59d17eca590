"""Streaming decompression of layer blobs.

Layers can be gigabytes, so nothing here reads a whole blob: the result is a
file-like object decompressing on demand. Corrupt or truncated compressed data
surfaces as DataLoss on read.
"""
from __future__ import annotations

import gzip
import io
import zlib
from typing import BinaryIO, Literal

import zstandard

from runtime.errors import DataLoss, InvalidArgument

Compression = Literal["gzip", "zstd", "none"]

_BUFFER = 1 << 20


class _Checked(io.RawIOBase):
    """Turns a decompressor's own exceptions into DataLoss."""

    def __init__(self, inner: BinaryIO, compression: str) -> None:
        self._inner = inner
        self._compression = compression

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            return self._inner.readinto(buffer)  # type: ignore[attr-defined]
        except (gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError) as e:
            raise DataLoss(f"corrupt {self._compression} layer data: {e}") from e

    def close(self) -> None:
        # Closes the decompressor only; the source stream belongs to the caller.
        self._inner.close()
        super().close()


def open_decompressed(fileobj: BinaryIO, compression: Compression) -> BinaryIO:
    """A readable stream of `fileobj` decompressed.

    gzip accepts concatenated members (as `pigz`/some registries produce) and zstd
    reads across frames. Closing the result does not close `fileobj`.
    """
    if compression == "none":
        return fileobj
    inner: BinaryIO
    if compression == "gzip":
        inner = gzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[assignment]
    elif compression == "zstd":
        inner = zstandard.ZstdDecompressor().stream_reader(  # type: ignore[assignment]
            fileobj, read_size=_BUFFER, read_across_frames=True, closefd=False
        )
    else:
        raise InvalidArgument(f"unsupported layer compression {compression!r}")
    return io.BufferedReader(_Checked(inner, compression), buffer_size=_BUFFER)  # type: ignore[return-value]
