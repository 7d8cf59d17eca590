"""Native snapshotter: every snapshot is a full copy of its parent.

Works on any filesystem (no overlayfs needed) at the cost of copying the parent on
every prepare/view; `cp --reflink=auto` makes that nearly free on btrfs/xfs.
"""
from __future__ import annotations

import asyncio
import os

from runtime.errors import Internal
from runtime.mount import Mount
from runtime.snapshots.local import LocalSnapshotter
from runtime.snapshots.snapshotter import Kind
from runtime.snapshots.storage import Record


class NativeSnapshotter(LocalSnapshotter):
    def _lay_out(self, path: str, parents: list[Record]) -> bool:
        if parents:
            return False  # fs is the parent's copy
        os.mkdir(os.path.join(path, "fs"), 0o755)
        return True

    async def _fill(self, path: str, parents: list[Record]) -> None:
        fs = os.path.join(path, "fs")
        # cp -a keeps modes, owners, times, symlinks, hardlinks, device nodes and
        # (best effort) xattrs; it runs outside the interpreter, so the copy neither
        # holds the GIL nor blocks the event loop.
        proc = await asyncio.create_subprocess_exec(
            "cp", "-a", "--reflink=auto", "--", self._storage.fs_dir(parents[0].id), fs,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await proc.communicate()
        except BaseException:
            # Cancelled: stop cp before the caller deletes the half-filled build dir.
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise Internal(f"copying parent {parents[0].name!r} failed: {err.decode(errors='replace').strip()}")

    def _mounts(self, rec: Record, parents: list[Record]) -> list[Mount]:
        mode = "ro" if rec.kind is Kind.VIEW else "rw"
        return [Mount(type="bind", source=self._storage.fs_dir(rec.id), options=["rbind", mode])]
