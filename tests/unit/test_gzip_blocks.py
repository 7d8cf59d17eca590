"""The layer writer's gzip: independent 1 MiB blocks, stored where deflate gains nothing, one valid member."""
from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
import zlib

import pytest

from runtime.diff.gzip_blocks import BLOCK, BlockGzip


def _gzip(data: bytes, level: int = 6, piece: int = 65543) -> bytes:
    out = io.BytesIO()
    g = BlockGzip(out, level)
    for at in range(0, len(data), piece):
        g.write(memoryview(data)[at:at + piece])
    g.close()
    g.close()  # a second close writes nothing more
    return out.getvalue()


MIXED = os.urandom(BLOCK + 5) + b"text that compresses " * 100_000 + os.urandom(12_345)


@pytest.mark.parametrize("data", [b"", b"abc", b"x" * BLOCK, MIXED], ids=["empty", "tiny", "one-block", "mixed"])
def test_every_inflater_reads_it_back(data: bytes) -> None:
    z = _gzip(data)
    assert gzip.decompress(z) == data
    assert zlib.decompress(z, 47) == data
    assert subprocess.run(["gzip", "-dc"], input=z, capture_output=True, check=True).stdout == data


def test_random_data_is_stored_compressible_data_deflated_and_output_is_deterministic() -> None:
    noise = os.urandom(3 * BLOCK)
    stored = _gzip(noise)
    assert len(noise) < len(stored) < len(noise) * 1.001
    text = b"the same line again\n" * 200_000
    assert len(_gzip(text)) < len(text) // 50
    assert _gzip(MIXED) == _gzip(MIXED, piece=1 << 20)


def test_a_tar_reader_streams_it() -> None:
    raw = io.BytesIO()
    body = os.urandom(2 * BLOCK + 17)
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    with tarfile.open(fileobj=io.BytesIO(_gzip(raw.getvalue())), mode="r|gz") as tar:
        member = next(iter(tar))
        f = tar.extractfile(member)
        assert f is not None and f.read() == body
