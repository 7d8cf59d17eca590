"""Write a layer tar from change events, compressed and hashed on the way into a content writer.

The tar is what Docker and containerd write: names relative without a leading "/",
directories (named with a trailing "/") before their contents, PAX headers where a field
needs them, hardlinks within the layer kept as links to the first name written, device
nodes and fifos kept, sockets left out, `security.capability` and `user.*` xattrs as
SCHILY.xattr records, `.wh.<name>` whiteouts and `.wh..wh..opq` opaque markers, and the
end of archive as two zero blocks without record padding (so an empty layer is 1024 zero
bytes, as Docker's). One pass hashes the uncompressed stream (the diff_id) and feeds the
compressor, whose output the content writer hashes as it stores it. Blocking: run it in a thread.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable
from typing import NamedTuple, Protocol

import zstandard

from runtime.diff.gzip_blocks import BlockGzip
from runtime.diff.layer_changes import Change, Event, Pending, xattrs
from runtime.errors import InvalidArgument
from runtime.untrusted_tar import CHUNK

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_BLOCK = tarfile.BLOCKSIZE
# Go's compress/gzip default, which Docker's layers are made with: level 9 costs twice the time for ~1%.
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_TYPES = {stat.S_IFDIR: tarfile.DIRTYPE, stat.S_IFLNK: tarfile.SYMTYPE, stat.S_IFCHR: tarfile.CHRTYPE,
          stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFIFO: tarfile.FIFOTYPE, stat.S_IFREG: tarfile.REGTYPE}


class Sink(Protocol):
    """Where the compressed bytes go (the content store's writer)."""

    offset: int

    def write(self, data: bytes) -> None: ...

    @property
    def digest(self) -> str: ...


class LayerDigests(NamedTuple):
    size: int
    digest: str
    diff_id: str


class _Compressed:
    """The uncompressed side: hashes what the tar writes and hands it to the compressor."""

    def __init__(self, sink: Sink, compression: str) -> None:
        self.hash = hashlib.sha256()
        self._sink = sink
        self._gzip: BlockGzip | None = None
        self._zstd: zstandard.ZstdCompressionWriter | None = None
        if compression == "gzip":
            # In independent blocks, stored where deflate gains nothing: already compressed or random files.
            self._gzip = BlockGzip(sink, GZIP_LEVEL)
        elif compression == "zstd":
            compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
            self._zstd = compressor.stream_writer(sink, closefd=False)  # type: ignore[arg-type]
        elif compression != "none":
            raise InvalidArgument(f"unsupported layer compression {compression!r}")

    def write(self, data: bytes | memoryview) -> None:
        self.hash.update(data)
        if self._gzip is not None:
            self._gzip.write(data)
        elif self._zstd is not None:
            self._zstd.write(data)
        else:
            self._sink.write(bytes(data))

    def close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()
        elif self._zstd is not None:
            self._zstd.close()  # type: ignore[no-untyped-call]


def _name(parts: tuple[str, ...], is_dir: bool) -> str:
    return "/".join(parts) + ("/" if is_dir else "")


class _TarWriter:
    def __init__(self, out: _Compressed) -> None:
        self._out = out
        self._links: dict[tuple[int, int], str] = {}
        self._buf = bytearray(CHUNK)
        # Directories descended into that have not changed: (parts, header, written yet).
        self._pending: list[tuple[tuple[str, ...], tarfile.TarInfo | None]] = []

    def _header(self, ti: tarfile.TarInfo) -> None:
        self._out.write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _info(self, parts: tuple[str, ...], dir_fd: int, name: str) -> tuple[tarfile.TarInfo, int | None] | None:
        """The entry's header, and an open fd of its data for a regular file; None for a socket or a vanished entry."""
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        kind = _TYPES.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            return None
        ti = tarfile.TarInfo(_name(parts, kind == tarfile.DIRTYPE))
        ti.type = kind
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        fd: int | None = None
        if kind == tarfile.SYMTYPE:
            ti.linkname = os.readlink(name, dir_fd=dir_fd)
        elif kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif kind in (tarfile.REGTYPE, tarfile.DIRTYPE):
            try:
                fd = os.open(name, _READ_FLAGS | (os.O_DIRECTORY if kind == tarfile.DIRTYPE else 0), dir_fd=dir_fd)
            except FileNotFoundError:
                return None
            ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                              for k, v in xattrs(fd).items()}
            if kind == tarfile.DIRTYPE:
                os.close(fd)
                fd = None
            elif st.st_nlink > 1:
                first = self._links.setdefault((st.st_dev, st.st_ino), ti.name)
                if first != ti.name:
                    os.close(fd)
                    fd = None
                    ti.type, ti.linkname = tarfile.LNKTYPE, first
            if fd is not None:
                ti.size = st.st_size
        return ti, fd

    def _data(self, fd: int, size: int) -> None:
        """Exactly `size` bytes of the file (a file that shrank meanwhile is padded with zeros), then block padding."""
        left = size
        while left:
            n = os.readv(fd, [memoryview(self._buf)[:min(left, CHUNK)]])
            if n == 0:
                self._out.write(bytes(left))
                break
            self._out.write(memoryview(self._buf)[:n])
            left -= n
        if size % _BLOCK:
            self._out.write(bytes(_BLOCK - size % _BLOCK))

    def _flush_pending(self, parts: tuple[str, ...]) -> None:
        while self._pending and self._pending[-1][0] != parts[:len(self._pending[-1][0])]:
            self._pending.pop()
        for i, (dparts, ti) in enumerate(self._pending):
            if ti is not None:
                self._header(ti)
                self._pending[i] = (dparts, None)

    def pending(self, ev: Pending) -> None:
        self._flush_pending(ev.parts[:-1])
        info = self._info(ev.parts, ev.dir_fd, ev.name)
        if info is not None:
            self._pending.append((ev.parts, info[0]))

    def change(self, ev: Change) -> None:
        self._flush_pending(ev.parts[:-1])
        if ev.deleted:
            ti = tarfile.TarInfo(_name((*ev.parts[:-1], WHITEOUT_PREFIX + ev.name), False))
            ti.uname = ti.gname = ""
            self._header(ti)
            return
        info = self._info(ev.parts, ev.dir_fd, ev.name)
        if info is None:
            return
        ti, fd = info
        self._header(ti)
        if fd is not None:
            try:
                self._data(fd, ti.size)
            finally:
                os.close(fd)
        if ti.type == tarfile.DIRTYPE:
            # Its contents follow: it must not be written again as a pending parent.
            self._pending.append((ev.parts, None))
        if ev.opaque:
            marker = tarfile.TarInfo(_name((*ev.parts, OPAQUE_MARKER), False))
            marker.uname = marker.gname = ""
            self._header(marker)

    def end(self) -> None:
        self._out.write(bytes(2 * _BLOCK))


def write_layer(events: Iterable[Event], sink: Sink, compression: str) -> LayerDigests:
    """Write the layer the events describe into `sink`; its size, digest and diff_id."""
    out = _Compressed(sink, compression)
    tar = _TarWriter(out)
    for ev in events:
        if isinstance(ev, Pending):
            tar.pending(ev)
        else:
            tar.change(ev)
    tar.end()
    out.close()
    return LayerDigests(size=sink.offset, digest=sink.digest, diff_id="sha256:" + out.hash.hexdigest())
