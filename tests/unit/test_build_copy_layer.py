"""A COPY's tar written as its layer (engine.builder.copy_layer): what reaches the runtime, and how a failure
on either side ends both (no thread left blocked, the ingest aborted)."""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import pytest

from engine.builder.copy_layer import listing, write_layer
from engine.builder.copy_tar import CopyTar, Ownership, Source
from runtime.client import Unavailable


class _Ingests:
    """The runtime's ingest API as write_layer uses it; `fail_after` bytes make the write fail."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.data = bytearray()
        self.fail_after = fail_after
        self.aborted: list[str] = []
        self.committed: tuple[int, str] | None = None

    async def open_ingest(self, ref: str, **kw: Any) -> None:
        pass

    async def write_ingest(self, ref: str, offset: int, data: AsyncIterable[bytes], **kw: Any) -> None:
        async for chunk in data:
            self.data += chunk
            if self.fail_after is not None and len(self.data) > self.fail_after:
                raise Unavailable("lost pyruntimed")

    async def commit_ingest(self, ref: str, size: int, digest: str, **kw: Any) -> Any:
        assert size == len(self.data) and digest == "sha256:" + hashlib.sha256(self.data).hexdigest()
        self.committed = (size, digest)
        return type("Info", (), {"digest": digest, "size": size})()

    async def abort_ingest(self, ref: str, **kw: Any) -> None:
        self.aborted.append(ref)


def _source(tmp_path: Path, size: int) -> Source:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "blob").write_bytes(os.urandom(size))
    (tmp_path / "src" / "sub").mkdir()
    (tmp_path / "src" / "sub" / "text").write_text("hello\n" * 1000)
    return Source(dest="/app", path=tmp_path / "src")


async def test_the_layer_is_the_tar_gzipped_with_its_diff_id(tmp_path: Path) -> None:
    runtime = _Ingests()
    source = _source(tmp_path, 3 << 20)

    def build(tar: CopyTar) -> None:
        tar.existing_directory("/app", 0o1777, 7, 8, 1_600_000_000)
        tar.add(source)

    layer = await write_layer(runtime, build, Ownership(1000, 1000), "lease")  # type: ignore[arg-type]
    raw = gzip.decompress(bytes(runtime.data))
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert layer.descriptor["digest"] == runtime.committed[1]  # type: ignore[index]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert (members["app"].mode, members["app"].uid, members["app"].gid) == (0o1777, 7, 8)
    assert {(m.uid, m.gid) for n, m in members.items() if n != "app"} == {(1000, 1000)}
    assert sorted(members) == ["app", "app/blob", "app/sub", "app/sub/text"]
    assert listing([source]) == {"/app/blob": False, "/app/sub": True, "/app/sub/text": False}


async def test_a_failing_tar_aborts_the_ingest(tmp_path: Path) -> None:
    runtime = _Ingests()
    source = _source(tmp_path, 3 << 20)

    def build(tar: CopyTar) -> None:
        tar.add(source)
        raise ValueError("the archive climbs out")

    with pytest.raises(ValueError, match="climbs out"):
        await write_layer(runtime, build, Ownership(), "lease")  # type: ignore[arg-type]
    assert len(runtime.aborted) == 1 and runtime.committed is None


async def test_a_runtime_that_fails_mid_stream_stops_the_writer(tmp_path: Path) -> None:
    runtime = _Ingests(fail_after=1 << 20)
    source = _source(tmp_path, 16 << 20)
    with pytest.raises(Unavailable):
        await asyncio.wait_for(write_layer(runtime, lambda tar: tar.add(source), Ownership(), "lease"),  # type: ignore[arg-type]
                               timeout=60)
    assert len(runtime.aborted) == 1 and runtime.committed is None


def test_the_listing_names_what_the_tar_holds(tmp_path: Path) -> None:
    """A followed symlink to a directory brings the directory's contents, as the tar does."""
    source = _source(tmp_path, 10)
    (tmp_path / "link").symlink_to(source.path)  # type: ignore[arg-type]
    followed = Source(dest="/app", path=tmp_path / "link")
    out = io.BytesIO()
    tar = CopyTar(out, Ownership())
    tar.add(followed)
    tar.close()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as written:
        names = {"/" + m.name: m.isdir() for m in written.getmembers()}
    assert listing([followed]) == names == {"/app/blob": False, "/app/sub": True, "/app/sub/text": False}
    assert listing([Source(dest="/x", path=tmp_path / "a.tar", unpack=True)]) is None
