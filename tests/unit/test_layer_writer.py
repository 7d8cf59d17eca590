"""The layer tar Compare writes, from plain trees (no daemon): Docker's format details."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import sys
import tarfile
from pathlib import Path

import pytest

from runtime.diff.layer_writer import write_layer
from runtime.diff.overlay_changes import overlay_walk
from runtime.diff.tree_changes import tree_walk

# Docker's empty layer: 1024 zero bytes.
EMPTY_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
# A v2 file capability (effective; every permitted bit of the low word): bytes that are not UTF-8.
CAPS = struct.pack("<IIIII", 0x02000001, 0xFFFFFFFF, 0, 0, 0)


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.offset = 0

    def write(self, data: bytes) -> None:
        self.data += data
        self.offset += len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()


def layer(events, compression: str = "none") -> tuple[bytes, str]:
    sink = Sink()
    result = write_layer(events, sink, compression)
    assert (result.size, result.digest) == (len(sink.data), sink.digest)
    raw = gzip.decompress(sink.data) if compression == "gzip" else bytes(sink.data)
    assert result.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    return raw, result.diff_id


def test_an_empty_diff_is_dockers_empty_layer(tmp_path: Path) -> None:
    (tmp_path / "same").mkdir()
    raw, diff_id = layer(tree_walk(str(tmp_path), str(tmp_path), set()), "gzip")
    assert raw == bytes(1024) and diff_id == EMPTY_DIFF_ID


def test_tree_changes_become_entries_whiteouts_and_links(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        (root / "keep" / "deep").mkdir(parents=True)
        (root / "keep" / "deep" / "same").write_text("same")
        (root / "gone").write_text("x")
        (root / "hidden").mkdir()
    os.utime(old / "keep" / "deep" / "same", ns=(0, 0))
    os.utime(new / "keep" / "deep" / "same", ns=(0, 0))
    (new / "gone").unlink()
    (new / "keep" / "deep" / "new").write_text("n" * 700)
    os.link(new / "keep" / "deep" / "new", new / "keep" / "link")
    os.symlink("deep/new", new / "keep" / "sym")
    os.mkfifo(new / "fifo")
    os.mknod(new / "null", 0o666 | 0o020000, os.makedev(1, 3))
    (new / "hidden" / "x").write_text("x")
    os.setxattr(new / "keep" / "deep" / "new", "security.capability", CAPS)
    raw, _ = layer(tree_walk(str(new), str(old), {("hidden",)}))
    tar = tarfile.open(fileobj=io.BytesIO(raw))
    assert tar.getnames() == ["fifo", ".wh.gone", "keep", "keep/deep", "keep/deep/new", "keep/link", "keep/sym",
                              "null"]
    m = {x.name: x for x in tar.getmembers()}
    assert m["keep/link"].islnk() and m["keep/link"].linkname == "keep/deep/new"
    assert m["keep/sym"].linkname == "deep/new" and m["fifo"].isfifo()
    assert (m["null"].ischr(), m["null"].devmajor, m["null"].devminor) == (True, 1, 3)
    assert tar.extractfile("keep/deep/new").read() == b"n" * 700
    assert m["keep/deep/new"].pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") \
        == CAPS
    # Unchanged parents come before what changed in them, named as directories.
    assert b"keep/deep/\0" in raw


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts are device nodes and trusted xattrs")
def test_overlay_upper_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    for root in (upper, lower):
        for d in ("opaque", "copied", "untouched"):
            (root / d).mkdir(parents=True)
    (lower / "deleted").write_text("d")
    (lower / "opaque" / "old").write_text("o")
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    (upper / "opaque" / "f").write_text("f")
    (upper / "copied" / "new").write_text("n")
    os.mknod(upper / "deleted", 0o600 | 0o020000, 0)
    raw, _ = layer(overlay_walk(str(upper), [str(lower)], set()))
    names = tarfile.open(fileobj=io.BytesIO(raw)).getnames()
    # A directory overlayfs only copied up is written as a parent, and not at all with nothing below it.
    assert names == ["copied", "copied/new", ".wh.deleted", "opaque", "opaque/.wh..wh..opq", "opaque/f"]
    assert b"trusted.overlay" not in raw


def test_a_tree_nested_deeper_than_python_recurses_is_walked(tmp_path: Path) -> None:
    # Deeper than the recursion limit set here, yet shallow enough for pytest's own cleanup (rmtree recurses).
    depth, limit = 400, 300
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
        os.close(parent)
    os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        for events in (tree_walk(str(tmp_path), None, set()), overlay_walk(str(tmp_path), [], set())):
            raw, _ = layer(events)
            assert raw.count(b"ustar") > depth
    finally:
        sys.setrecursionlimit(previous)
