"""The build context's forward-only tar reader against tarfile's own: the same members and data for the
tars clients send (PAX, GNU and ustar names, pax globals, GNU tar's sparse files), and tarfile's ends."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from engine.builder.context.tar_reader import members


def _tar(fmt: int, entries: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=fmt, pax_headers={"comment": "global"}  # type: ignore[call-overload]
                      if fmt == tarfile.PAX_FORMAT else None) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _entries() -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    d = tarfile.TarInfo("dir")
    d.type = tarfile.DIRTYPE
    out.append((d, None))
    for name, size in (("dir/small", 5), ("dir/" + "long-name-" * 20, 70_000), ("empty", 0),
                       ("dir/exact", 1024), ("big", (1 << 20) + 3)):
        info = tarfile.TarInfo(name)
        info.size = size
        info.uid, info.mtime = 1000, 1_600_000_000
        out.append((info, os.urandom(size)))
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "dir/" + "target-" * 30
    out.append((link, None))
    return out


def _read(data: bytes) -> list[tuple[str, str, int, int, str, bytes | None]]:
    out = []
    for member, content in members(io.BufferedReader(io.BytesIO(data), 4096)):  # type: ignore[arg-type]
        got = None
        if content is not None:
            buf, parts = bytearray(3000), []
            while n := content.readinto(buf):
                parts.append(bytes(buf[:n]))
            got = b"".join(parts)
        out.append((member.name, member.type.decode(), member.size, member.uid, member.linkname, got))
    return out


def _expected(data: bytes) -> list[tuple[str, str, int, int, str, bytes | None]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isreg() else None
            out.append((m.name, m.type.decode(), m.size, m.uid, m.linkname, f.read() if f else None))
    return out


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_same_members_and_data_as_tarfile(fmt: int, mode: str) -> None:
    data = _tar(fmt, _entries(), mode)
    assert _read(data) == _expected(data)


def test_data_left_unread_is_skipped() -> None:
    data = _tar(tarfile.PAX_FORMAT, _entries())
    names = [m.name for m, _ in members(io.BufferedReader(io.BytesIO(data)))]  # type: ignore[arg-type]
    assert names == [m.name for m, _ in _entries()]


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is not installed")
@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_files_expand_as_tarfile_expands_them(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(1 << 20)
        f.write(b"middle")
        f.seek(3 << 20)
        f.write(b"end")
        f.truncate(5 << 20)
    out = tmp_path / "out.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-cf", str(out), "-C", str(src), "sparse"], check=True)
    data = out.read_bytes()
    got = _read(data)
    assert got == _expected(data)
    assert got[0][5] == (src / "sparse").read_bytes()


def test_ends_as_tarfile_ends() -> None:
    data = _tar(tarfile.PAX_FORMAT, _entries()[:3])
    # Garbage where the next header should be ends the archive, as tarfile's reader does after the first.
    cut = len(data) - 1024  # the end-of-archive blocks
    assert [m[0] for m in _read(data[:cut] + b"x" * 512)] == [m[0] for m in _read(data)]
    with pytest.raises(tarfile.ReadError):
        _read(b"x" * 1024)
    with pytest.raises(tarfile.ReadError, match="unexpected end of data"):
        _read(data[:cut - 30_000])
