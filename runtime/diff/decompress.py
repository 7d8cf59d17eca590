"""Streaming decompression of layer blobs.

Layers can be gigabytes, so nothing here reads a whole blob: the result is a
file-like object decompressing on demand. Corrupt or truncated compressed data
surfaces as DataLoss on read.
"""
from __future__ import annotations

import gzip
import io
import zlib
from typing import Protocol

import zstandard

from runtime.errors import DataLoss, InvalidArgument
from runtime.oci import Compression

_BUFFER = 1 << 20


class Readable(Protocol):
    """What a layer is read through: read() alone, as tarfile's stream mode uses it."""

    def read(self, size: int = -1, /) -> bytes: ...


class _Decompressor(Protocol):
    def readinto(self, buffer: memoryview, /) -> int: ...
    def close(self) -> None: ...


class _Checked(io.RawIOBase):
    """Turns a decompressor's own exceptions into DataLoss."""

    def __init__(self, inner: _Decompressor, compression: str) -> None:
        self._inner = inner
        self._compression = compression

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            return self._inner.readinto(buffer)
        except (gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError) as e:
            raise DataLoss(f"corrupt {self._compression} layer data: {e}") from e

    def close(self) -> None:
        # Closes the decompressor only; the source stream belongs to the caller.
        self._inner.close()
        super().close()


def open_decompressed(fileobj: Readable, compression: Compression) -> Readable:
    """A readable stream of `fileobj` decompressed.

    gzip accepts concatenated members (as `pigz`/some registries produce) and zstd
    reads across frames. Closing the result does not close `fileobj`.
    """
    if compression == "none":
        return fileobj
    # Both decompressors only read() their source front to back (a layer may come straight off the
    # wire); their stubs ask for a whole file.
    inner: _Decompressor
    if compression == "gzip":
        inner = gzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[call-overload]
    elif compression == "zstd":
        inner = zstandard.ZstdDecompressor().stream_reader(
            fileobj, read_size=_BUFFER, read_across_frames=True, closefd=False  # type: ignore[arg-type]
        )
    else:
        raise InvalidArgument(f"unsupported layer compression {compression!r}")
    return io.BufferedReader(_Checked(inner, compression), buffer_size=_BUFFER)
