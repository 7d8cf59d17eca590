"""Overlay snapshotter: each snapshot's fs dir is one overlayfs layer.

An active snapshot's fs dir is the upperdir and its ancestors' fs dirs are the
lowerdirs, so preparing is O(1) no matter how big the parents are.
"""
from __future__ import annotations

import os
import shutil
import tempfile

from runtime import mount
from runtime.mount import Mount
from runtime.snapshots.local import LocalSnapshotter
from runtime.snapshots.snapshotter import Kind
from runtime.snapshots.storage import Record

_INDEX_PARAM = "/sys/module/overlay/parameters/index"


def _extra_options() -> list[str]:
    # With index=on the kernel ties each lowerdir to the first upperdir it was used
    # with and refuses later mounts that reuse it, which is exactly what sharing
    # committed layers does.
    try:
        with open(_INDEX_PARAM) as f:
            return ["index=off"] if f.read().strip() == "Y" else []
    except OSError:
        return []


def supported(root: str) -> str | None:
    """None if overlay snapshots work under `root`, else why not.

    Actually mounts a two-layer overlay in `root` and exercises what the snapshotter
    and the layer applier rely on: writes through the merge, whiteouts on delete and
    trusted.* xattrs (opaque dirs) on the upper filesystem. Fails e.g. when `root`
    is itself on overlayfs or when not privileged.
    """
    try:
        os.makedirs(root, exist_ok=True)
        base = tempfile.mkdtemp(prefix=".overlay-check-", dir=root)
    except OSError as e:
        return f"cannot create a test dir in {root}: {e}"
    try:
        dirs = {n: os.path.join(base, n) for n in ("lower1", "lower2", "upper", "work", "merged")}
        for d in dirs.values():
            os.mkdir(d)
        with open(os.path.join(dirs["lower1"], "gone"), "w"):
            pass
        try:
            os.setxattr(dirs["upper"], "trusted.overlay.opaque", b"y")
            os.removexattr(dirs["upper"], "trusted.overlay.opaque")
        except OSError as e:
            return f"{root} does not support trusted.* xattrs needed for opaque dirs: {e}"
        m = Mount(
            type="overlay",
            source="overlay",
            options=[
                *_extra_options(),
                f"workdir={dirs['work']}",
                f"upperdir={dirs['upper']}",
                f"lowerdir={dirs['lower2']}:{dirs['lower1']}",
            ],
        )
        try:
            mount.mount_all([m], dirs["merged"])
        except Exception as e:  # noqa: BLE001 - turned into the reason string
            return f"overlay mount in {root} failed: {e}"
        try:
            with open(os.path.join(dirs["merged"], "new"), "w") as f:
                f.write("x")
            os.unlink(os.path.join(dirs["merged"], "gone"))
        except OSError as e:
            return f"writing through an overlay mount in {root} failed: {e}"
        finally:
            mount.unmount(dirs["merged"], detach=True)
        st = os.lstat(os.path.join(dirs["upper"], "gone"))
        if not (os.path.exists(os.path.join(dirs["upper"], "new")) and st.st_rdev == 0):
            return f"overlay in {root} did not record writes/whiteouts in the upper dir"
        return None
    except OSError as e:
        return f"overlay check in {root} failed: {e}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


class OverlaySnapshotter(LocalSnapshotter):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self._options = _extra_options()

    def _lay_out(self, path: str, parents: list[Record]) -> bool:
        os.mkdir(os.path.join(path, "fs"), 0o755)
        os.mkdir(os.path.join(path, "work"), 0o700)
        return True

    def _mounts(self, rec: Record, parents: list[Record]) -> list[Mount]:
        view = rec.kind is Kind.VIEW
        if not parents:
            return [Mount(type="bind", source=self._storage.fs_dir(rec.id), options=["rbind", "ro" if view else "rw"])]
        if view and len(parents) == 1:
            # A single read-only layer needs no overlay.
            return [Mount(type="bind", source=self._storage.fs_dir(parents[0].id), options=["rbind", "ro"])]
        lowerdir = "lowerdir=" + ":".join(self._storage.fs_dir(p.id) for p in parents)
        if view:
            # Without an upperdir overlayfs is read-only by construction.
            return [Mount(type="overlay", source="overlay", options=[*self._options, lowerdir])]
        return [
            Mount(
                type="overlay",
                source="overlay",
                options=[
                    *self._options,
                    f"workdir={self._storage.work_dir(rec.id)}",
                    f"upperdir={self._storage.fs_dir(rec.id)}",
                    lowerdir,
                ],
            )
        ]
