"""Reading an image archive as it streams in: its files become verified blobs, nothing is extracted.

An archive (docker-archive, old or new, or an OCI layout; plain or gzip) is hostile input. Its
entries are never written to disk by their names: every regular file goes into the content store
through an ingest (under the request's lease), the few layout files (manifest.json, index.json,
oci-layout, repositories) are kept in memory, and links are remembered as names pointing at other
names of the same archive. Lookups later follow those links inside the archive only, the way
dockerd resolves manifest.json's paths in the directory it unpacked (in scope): absolute names,
`..` and device nodes are refused, naming the entry.

A file under `blobs/sha256/<hex>` must hash to that digest; any other file's digest is whatever it
hashes to, and the layout's checks (config digests, diff_ids) decide. With `layer_digests`, a
compressed blob's uncompressed digest is computed on the way in, so an import that does not unpack
checks diff_ids without reading a layer again; one that unpacks checks them while applying instead,
which spares the second decompression.

Blocking: `read_archive` runs in a thread; it reaches the event loop for the body's chunks and to record blobs.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import secrets
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime import untrusted_tar as ut
from runtime.diff.verify import DiffDigester
from runtime.errors import DataLoss, InvalidArgument, RuntimeError_
from runtime.metadata.content import ContentService
from runtime.oci import Compression

RULES = ut.Rules("archive")
LAYOUT_FILES = frozenset({"manifest.json", "index.json", "oci-layout", "repositories"})
_LAYOUT_MAX = 16 << 20
_BLOB_NAME = re.compile(r"blobs/sha256/([a-f0-9]{64})")
_CHUNK = 1 << 20
_MAX_LINK_HOPS = 32


def sniff(head: bytes) -> Compression:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return "none"


@dataclass(frozen=True)
class Blob:
    """A regular file of the archive, now a blob of the content store."""

    name: str
    digest: str
    size: int
    compression: str  # what its first bytes say: gzip, zstd or none
    # Its uncompressed digest: the digest itself when it is not compressed; "" when not computed or unreadable.
    diff_id: str


@dataclass
class Archive:
    """What an archive holds, by the names of its entries (normalised: no `./`, no trailing `/`)."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    layout: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # name -> the name it points at

    def _follow(self, name: str) -> str:
        parts = list(RULES.split(name, name))
        for _ in range(_MAX_LINK_HOPS):
            # Each component may itself be a link: resolve from the root down, like a chroot.
            for i in range(1, len(parts) + 1):
                head = "/".join(parts[:i])
                if head in self.links:
                    target = self.links[head]
                    base = [] if target.startswith("/") else parts[: i - 1]
                    joined = base + [p for p in target.split("/") if p not in ("", ".")]
                    resolved: list[str] = []
                    for p in joined:
                        if p == "..":
                            if resolved:
                                resolved.pop()  # `..` stops at the archive's root, as in scope
                        else:
                            resolved.append(p)
                    parts = resolved + parts[i:]
                    break
            else:
                return "/".join(parts)
        raise InvalidArgument(f"invalid archive: too many levels of links resolving {name!r}")

    def blob(self, name: str, what: str) -> Blob:
        found = self.blobs.get(self._follow(name))
        if found is None:
            raise InvalidArgument(f"invalid archive: {what} {name!r} is not in the archive")
        return found

    def has_blob(self, digest: str) -> Blob | None:
        return self.blobs.get(f"blobs/sha256/{digest.removeprefix('sha256:')}")

    def json(self, name: str) -> Any:
        data = self.layout.get(name)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as e:
            raise InvalidArgument(f"invalid archive: {name} is not valid JSON: {e}") from None
        except RecursionError:
            raise InvalidArgument(f"invalid archive: {name} is not valid JSON: exceeded max depth") from None


class Feed(Protocol):
    """Where a listener takes a file's bytes as they are read: end() with the stored blob, or None if it failed."""

    def feed(self, chunk: bytes) -> None: ...

    def end(self, blob: Blob | None) -> None: ...


class Listener(Protocol):
    """Told, in the reading thread, of each layout file read and each blob stored, as they come."""

    def layout(self, name: str, data: bytes) -> None: ...

    def start(self, name: str) -> Feed | None: ...

    def blob(self, blob: Blob) -> None: ...


class BodyReader(io.RawIOBase):
    """The request body as a blocking file for the reading thread; chunks come from the event loop."""

    def __init__(self, body: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._body = body
        self._loop = loop
        self._data = b""
        self._pos = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        # Gather small network chunks so each thread hop carries a useful amount.
        parts: list[bytes] = []
        size = 0
        async for chunk in self._body:
            parts.append(chunk)
            size += len(chunk)
            if size >= _CHUNK:
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read(self, size: int | None = -1) -> bytes:
        # tarfile reads with read(): answering from the gathered block spares RawIOBase's two copies.
        if self._pos >= len(self._data) and not self._eof:
            self._data = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()
            self._pos = 0
            self._eof = not self._data
        start = self._pos
        self._pos = len(self._data) if size is None or size < 0 else min(len(self._data), start + size)
        if start == 0 and self._pos == len(self._data):
            return self._data
        return self._data[start:self._pos]

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Reader:
    def __init__(self, content: ContentService, loop: asyncio.AbstractEventLoop, layer_digests: bool,
                 listener: Listener | None) -> None:
        self._content = content
        self._loop = loop
        self._layer_digests = layer_digests
        self._listener = listener
        self.archive = Archive()

    def _await(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def run(self, source: io.RawIOBase) -> Archive:
        try:
            with tarfile.open(fileobj=source, mode="r|*", bufsize=_CHUNK) as tar:
                for member in tar:
                    self._entry(tar, member)
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            raise InvalidArgument(f"invalid archive: {_tar_error(e)}") from None
        if not self.archive.blobs and not self.archive.layout:
            raise InvalidArgument("invalid archive: it holds no files")
        return self.archive

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = RULES.split(member.name, member.name)
        if not parts:
            return
        name = "/".join(parts)
        if member.ischr() or member.isblk():
            raise RULES.refuse(member.name, "device nodes are not allowed")
        if member.issym() or member.islnk():
            if "\0" in member.linkname:
                raise RULES.refuse(member.name, "link target contains a NUL byte")
            # A hardlink names its target from the archive's root; a symlink from its own directory.
            self.archive.links[name] = "/" + member.linkname if member.islnk() else member.linkname
            return
        if not member.isreg():
            return  # directories and fifos hold nothing an image needs
        data = tar.extractfile(member)
        assert data is not None
        if name in LAYOUT_FILES:
            if member.size > _LAYOUT_MAX:
                raise InvalidArgument(f"invalid archive: {name} is larger than {_LAYOUT_MAX} bytes")
            self.archive.layout[name] = data.read()
            if self._listener is not None:
                self._listener.layout(name, self.archive.layout[name])
            return
        if len(parts) == 2 and parts[1] in ("json", "VERSION"):
            return  # the legacy per-layer files; manifest.json says all a load needs
        feed = self._listener.start(name) if self._listener is not None else None
        stored: Blob | None = None
        try:
            stored = self.archive.blobs[name] = self._blob(name, data, member.size, feed)
        finally:
            if feed is not None:
                feed.end(stored)
        if self._listener is not None:
            self._listener.blob(stored)

    def _blob(self, name: str, data: Any, size: int, feed: Feed | None) -> Blob:
        named = _BLOB_NAME.fullmatch(name)
        expected = f"sha256:{named.group(1)}" if named else None
        present = expected is not None and self._content.store.exists(expected)
        writer = None if present else self._content.store.writer(f"import-{secrets.token_hex(8)}", expected, size)
        # A blob already stored is only hashed; the writer hashes what it writes.
        own_hash = hashlib.sha256() if present else None
        diff: DiffDigester | None = None
        compression = "none"
        written = 0
        try:
            while chunk := data.read(_CHUNK):
                if written == 0:
                    compression = sniff(chunk)
                    if compression != "none" and self._layer_digests:
                        diff = DiffDigester(compression)
                written += len(chunk)
                if writer is not None:
                    writer.write(chunk)
                if feed is not None:
                    feed.feed(chunk)
                if own_hash is not None:
                    own_hash.update(chunk)
                if diff is not None:
                    try:
                        diff.feed(chunk)
                    except DataLoss:
                        diff = None  # not a layer after all, or a corrupt one: the diff_id check says which
            if written != size:
                raise InvalidArgument(f"invalid archive: {name} ends after {written} of {size} bytes")
            if expected is not None:
                digest = expected
            else:
                assert writer is not None  # a file no digest names is always written, never skipped
                digest = writer.digest
            if own_hash is not None and "sha256:" + own_hash.hexdigest() != digest:
                raise DataLoss(f"invalid archive: blob {name} does not match its digest "
                               f"(its content is sha256:{own_hash.hexdigest()})")
            if writer is not None:
                try:
                    self._await(self._content.commit(writer, size, digest))
                except DataLoss:
                    raise DataLoss(f"invalid archive: blob {name} does not match its digest {digest}") from None
            else:
                self._await(self._content.share(digest))
        finally:
            if writer is not None:
                writer.close()
                self._content.store.abort(writer.ref)
        diff_id = digest if compression == "none" else (diff.digest() if diff is not None else "")
        return Blob(name=name, digest=digest, size=size, compression=compression, diff_id=diff_id)


def _tar_error(e: Exception) -> str:
    text = str(e) or type(e).__name__
    if isinstance(e, EOFError) or "unexpected end" in text:
        return "unexpected EOF (the archive is truncated)"
    if "invalid header" in text or "not a gzip file" in text:
        return f"not a tar or tar.gz archive ({text})"
    return text


def read_archive(content: ContentService, loop: asyncio.AbstractEventLoop, source: io.RawIOBase,
                 layer_digests: bool = True, listener: Listener | None = None) -> Archive:
    """Store every file of the tar streamed from `source`; raises the runtime's errors only."""
    try:
        return _Reader(content, loop, layer_digests, listener).run(source)
    except RuntimeError_:
        raise
    except Exception as e:  # a failure in the body's transport, seen from the thread
        raise InvalidArgument(f"invalid archive: {type(e).__name__}: {e}") from None
