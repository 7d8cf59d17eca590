"""A build context's tar, read forward once: each member with a reader of its data (blocking).

tarfile's stream mode reads through a 10 KiB record buffer and joins the pieces again for
every read of a member's data: for the 50 MB context of a cached build that cost more than
hashing and writing the files together, while the docker CLI was still sending. An
uncompressed tar (what the docker CLI and the SDK send) is read here instead: tarfile still
parses every header (TarInfo.fromtarfile: ustar, pax, GNU long names, sparse maps), and a
member's data goes from the stream straight into the caller's buffer. Compressed tars
(gzip, bzip2, xz, told apart by tarfile's own magic rules) go through tarfile's stream mode.

Both ends are tarfile's: a bad first header is a ReadError, a bad or missing later one ends
the archive, a member whose data is cut short is "unexpected end of data", and an archive
that stops right after its last member's data (no padding, no end blocks: what the docker CLI
sends with a Dockerfile outside the context) is complete.
"""
from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from typing import Any, Protocol, cast

_BLOCK = tarfile.BLOCKSIZE
_UNEXPECTED_END = "unexpected end of data"
# tarfile's kinds of HeaderError (typeshed leaves them out): a broken pax or GNU header after a good one is an
# error; an end-of-archive block ends it; anything else ends it too, unless it is the first header.
_SUBSEQUENT: type[Exception] = getattr(tarfile, "SubsequentHeaderError")
_END_BLOCK: type[Exception] = getattr(tarfile, "EOFHeaderError")
_EMPTY: type[Exception] = getattr(tarfile, "EmptyHeaderError")


def _compressed(head: bytes) -> bool:
    """tarfile's r|* detection: gzip, bzip2 or xz magic."""
    return (head.startswith(b"\x1f\x8b\x08") or (head[0:3] == b"BZh" and head[4:10] == b"1AY&SY")
            or head.startswith((b"\x5d\x00\x00\x80", b"\xfd7zXZ")))


class Data(Protocol):
    """A member's data: read into the caller's buffer, 0 at its end."""

    def readinto(self, buffer: Any, /) -> int: ...


class _Source:
    """The stream with the bytes already taken to tell its kind put back in front; counts its position."""

    def __init__(self, head: bytes, stream: io.BufferedReader) -> None:
        self._head = memoryview(head)
        self._stream = stream
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        if self._head:
            n = len(self._head) if size < 0 else min(size, len(self._head))
            out = bytes(self._head[:n])
            self._head = self._head[n:]
            if size < 0 or n < size:
                out += self._stream.read(-1 if size < 0 else size - n)
        else:
            out = self._stream.read(size)
        self.position += len(out)
        return out

    def readinto(self, view: memoryview) -> int:
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            n = self._stream.readinto(view)
        self.position += n
        return n

    def tell(self) -> int:
        return self.position

    def skip(self, size: int) -> int:
        """Read and drop up to `size` bytes; how many there were."""
        scratch = bytearray(min(size, 1 << 16))
        left = size
        while left:
            n = self.readinto(memoryview(scratch)[:min(left, len(scratch))])
            if not n:
                break
            left -= n
        return size - left


class _Headers:
    """What TarInfo.fromtarfile reads headers through: the stream, where the next header is, pax globals."""

    def __init__(self, source: _Source) -> None:
        self.fileobj = source
        self.offset = 0
        self.pax_headers: dict[str, str] = {}
        self.encoding = tarfile.ENCODING
        self.errors = "surrogateescape"  # tarfile's for reading


class MemberData(io.RawIOBase):
    """One member's data, as the file it expands to (a sparse member's holes read as zeros)."""

    def __init__(self, source: _Source, member: tarfile.TarInfo) -> None:
        self._source = source
        # (stored, length): a run of stored bytes, or of zeros
        self._runs: list[tuple[bool, int]] = []
        at = 0
        # typeshed has `sparse` as bytes; tarfile makes it a list of (offset, size) of the stored runs
        sparse = cast("list[tuple[int, int]] | None", member.sparse)
        for offset, size in sparse or [(0, member.size)]:
            if not size:
                continue  # GNU tar ends its maps with empty entries
            if offset > at:
                self._runs.append((False, offset - at))
            self._runs.append((True, size))
            at = offset + size
        if at < member.size:
            self._runs.append((False, member.size - at))
        self._runs.reverse()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not self._runs or not len(view):
            return 0
        stored, left = self._runs[-1]
        n = min(len(view), left)
        if stored:
            n = self._source.readinto(view[:n])
            if not n:
                raise tarfile.ReadError(_UNEXPECTED_END)
        else:
            view[:n] = bytes(n)
        if n == left:
            self._runs.pop()
        else:
            self._runs[-1] = (stored, left - n)
        return n

    def drain(self) -> None:
        """Read what the caller left (the next header comes after it)."""
        for stored, left in reversed(self._runs):
            if stored and self._source.skip(left) < left:
                raise tarfile.ReadError(_UNEXPECTED_END)
        self._runs.clear()


def _plain(source: _Source) -> Iterator[tuple[tarfile.TarInfo, Data | None]]:
    headers = _Headers(source)
    first = True
    while True:
        gap = headers.offset - source.position
        if gap and source.skip(gap) < gap:
            return  # only the last member's padding was missing
        try:
            member = tarfile.TarInfo.fromtarfile(headers)  # type: ignore[arg-type]
        except tarfile.HeaderError as e:
            if isinstance(e, _SUBSEQUENT):
                raise tarfile.ReadError(str(e)) from None
            if first and not isinstance(e, _END_BLOCK):
                raise tarfile.ReadError("empty file" if isinstance(e, _EMPTY) else str(e)) from None
            return
        first = False
        data = MemberData(source, member) if member.isreg() else None
        yield member, data
        if data is not None:
            data.drain()


def _next(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except tarfile.ReadError as e:
        # The end right after the last member's data (see above): every member's data has been
        # read whole by then (a short one fails while it is read), so only padding is missing.
        if str(e) == _UNEXPECTED_END:
            return None
        raise


def _compressed_members(source: _Source) -> Iterator[tuple[tarfile.TarInfo, Data | None]]:
    with tarfile.open(fileobj=source, mode="r|*") as tar:  # type: ignore[call-overload]
        while (member := _next(tar)) is not None:
            yield member, tar.extractfile(member) if member.isreg() else None


def members(stream: io.BufferedReader) -> Iterator[tuple[tarfile.TarInfo, Data | None]]:
    """The members of the tar in `stream`, in order; a regular file's data is read before the next."""
    head = stream.read(_BLOCK)
    source = _Source(head, stream)
    return _compressed_members(source) if _compressed(head) else _plain(source)
