"""A gzip stream written in independent blocks, each stored as it is when deflate would not shrink it.

zlib spends as long on data it cannot compress (already compressed files, random data) as on data
it can: about 30 MB/s on this machine at any level, which made a layer of such files cost more to
write than everything else a build step does. Here the input is cut into 1 MiB blocks, deflated
independently, as pigz writes them: each ends on a byte boundary with a sync flush (an empty stored
block) and starts a fresh dictionary, so concatenated they are one valid deflate stream in one gzip
member, which every inflater reads (Go's, zlib's, Python's tarfile). Before a block is deflated its
first 64 KiB are, at level 1: when that does not shrink them by 5 %, the block goes out as stored
blocks (level 0, a copy). A block whose deflated form is no smaller than the data is stored too.

The output depends only on the input and the level, so a layer made twice has one digest. Losing
the dictionary at each 1 MiB costs well under 1 % of size on compressible data.
"""
from __future__ import annotations

import struct
import zlib
from typing import Protocol

BLOCK = 1 << 20
_PROBE = 1 << 16
_PROBE_RATIO = 0.95
# Magic, deflate, no flags, mtime 0, no extra flags, OS unknown (255): Go's compress/gzip header.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL_EMPTY_BLOCK = b"\x03\x00"


class Out(Protocol):
    def write(self, data: bytes) -> object: ...


def _deflate(data: bytes | memoryview, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def _compresses(data: bytes | memoryview) -> bool:
    probe = data[:_PROBE]
    c = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    return len(c.compress(probe)) + len(c.flush()) < len(probe) * _PROBE_RATIO


class BlockGzip:
    """Write-only gzip file object over `out`; close() writes the end of the stream (not closing `out`)."""

    def __init__(self, out: Out, level: int) -> None:
        self._out = out
        self._level = level
        self._buf = bytearray()
        self._crc = 0
        self._size = 0
        self._closed = False
        out.write(_HEADER)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buf += data
        whole = len(self._buf) - len(self._buf) % BLOCK
        if whole:
            with memoryview(bytes(self._buf[:whole])) as blocks:
                del self._buf[:whole]
                for at in range(0, whole, BLOCK):
                    self._block(blocks[at:at + BLOCK])
        return len(data)

    def _block(self, data: memoryview) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        if self._level > 0 and _compresses(data):
            deflated = _deflate(data, self._level)
            if len(deflated) < len(data):
                self._out.write(deflated)
                return
        self._out.write(_deflate(data, 0))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._buf:
            with memoryview(bytes(self._buf)) as rest:
                self._block(rest)
            self._buf.clear()
        self._out.write(_FINAL_EMPTY_BLOCK + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
