"""Unpack an image's layers into snapshots named by chainID.

Each layer is applied to a temporary active snapshot on top of the previous
chainID and committed under its own chainID only after its uncompressed digest
matches the config's diff_id, so identical layer stacks are shared and a bad
layer never becomes visible.
"""
from __future__ import annotations

import asyncio
import hashlib
import secrets

from runtime.diff.apply import apply_layer
from runtime.diff.decompress import Readable, open_decompressed
from runtime.errors import AlreadyExists, DataLoss, InvalidArgument
from runtime.metadata.snapshots import SnapshotService
from runtime.mount import Mount
from runtime.oci import Compression, Descriptor, layer_compression


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out

class _HashingReader:
    """Hashes what the tar reader consumes, so diff_id is checked in the same pass."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

def _apply_blob(path: str, compression: Compression, mounts: list[Mount], diff_id: str, verified: bool) -> None:
    with open(path, "rb") as raw:
        apply_stream(raw, compression, mounts, diff_id, verified)


def apply_stream(raw: Readable, compression: Compression, mounts: list[Mount], diff_id: str,
                 verified: bool = False) -> None:
    """Apply a layer read from `raw` (blocking); unless `verified`, DataLoss if it is not `diff_id`."""
    stream = open_decompressed(raw, compression)
    if verified:
        apply_layer(stream, mounts)
        return
    reader = _HashingReader(stream)
    apply_layer(reader, mounts)
    reader.drain()
    actual = "sha256:" + reader.hash.hexdigest()
    if actual != diff_id:
        raise DataLoss(f"layer diff_id mismatch: got {actual}, config says {diff_id}")


async def unpack_layer(snapshots: SnapshotService, layer: Descriptor, blob_path: str,
                       diff_id: str, chain_id: str, parent: str | None, verified: bool = False) -> bool:
    """Apply one layer; False if its chainID snapshot already existed.

    `verified`: the blob is known to decompress to `diff_id` (checked while it
    downloaded), so the apply skips hashing it again."""
    if await snapshots.exists(chain_id):
        return False
    compression = layer_compression(layer.mediaType)
    key = f"extract-{secrets.token_hex(6)} {chain_id}"
    mounts = await snapshots.prepare(key, parent)
    try:
        await asyncio.to_thread(_apply_blob, blob_path, compression, mounts, diff_id, verified)
        try:
            await snapshots.commit(chain_id, key)
        except AlreadyExists:
            # A concurrent pull committed the same chain first: theirs is identical.
            await snapshots.remove(key)
        return True
    except BaseException:
        if await snapshots.exists(key):
            await snapshots.remove(key)
        raise

def check_diff_ids(layers: list[Descriptor], diff_ids: list[str]) -> None:
    if len(layers) != len(diff_ids):
        raise InvalidArgument(
            f"image config lists {len(diff_ids)} diff_ids for {len(layers)} layers"
        )
