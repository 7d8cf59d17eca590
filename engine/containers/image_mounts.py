"""Image mounts: `--mount type=image,src=IMAGE,dst=D[,image-subpath=P]` (API 1.48) shows another image's files,
read-only, at D.

The image is looked up at create, and the container's record keeps it in use (rmi refuses it, as for the
image a container runs). The spec, written at create, binds a node of the container's own (as for volume
subpaths); each start asks the runtime for a read-only view of the image's top layer, mounts it, and binds P
beneath it (resolved as a volume subpath is: never out of the image) onto the node. The run's end takes the
mounts and the view down again, so a view never outlives the run that used it.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any, Protocol

from engine.containers.store import Container
from engine.containers.subpaths import Subpaths
from engine.errors import Internal
from runtime import client as rt


class SnapshotViews(Protocol):
    async def view_snapshot(self, snapshotter: str, key: str, parent: str, labels: dict[str, str] | None = None,
                            namespace: str | None = None, lease: str | None = None) -> list[dict[str, Any]]: ...

    async def remove_snapshot(self, snapshotter: str, key: str, namespace: str | None = None) -> None: ...


class ImageMounts:
    def __init__(self, root: Path, runtime: SnapshotViews) -> None:
        self._views = root / "views"
        self._pin_root = root / "pins"
        self._pins = Subpaths(self._pin_root)
        self._rt = runtime

    def spec_source(self, cid: str, index: int) -> str:
        return self._pins.spec_source(cid, index)

    async def pin(self, c: Container) -> None:
        """Before the task: each image mount's view, mounted, and its subpath bound onto the spec's node."""
        if not c.image_mounts:
            return
        snapshotter = c.storage.driver if c.storage is not None else ""
        await self.release(c.id)  # what an engine killed mid-run left
        views = self._views / c.id
        await asyncio.to_thread(views.mkdir, 0o700, True, True)
        await asyncio.to_thread((views / "snapshotter").write_text, json.dumps(snapshotter))
        for index, m in enumerate(c.image_mounts):
            key = _key(c.id, index)
            try:
                try:
                    mounts = await self._rt.view_snapshot(snapshotter, key, m["chain_id"])
                except rt.AlreadyExists:  # a run's whose record of it went (a reboot empties the exec root)
                    await self._rt.remove_snapshot(snapshotter, key)
                    mounts = await self._rt.view_snapshot(snapshotter, key, m["chain_id"])
            except rt.NotFound:
                raise Internal(f"image {m['source']} of the mount at {m['destination']} has no layers here") from None
            target = views / str(index)
            await asyncio.to_thread(target.mkdir, 0o755, False, True)
            for mount in mounts:
                await _mount(mount, str(target))
            await self._pins.pin(c.id, index, str(target), m.get("subpath") or ".")

    async def release(self, cid: str) -> None:
        """After a run (or before one): the binds, the views' mounts and the views go."""
        views = self._views / cid
        if not views.exists():
            return  # nothing pinned for this run: the common case, decided without a thread
        await self._pins.release(cid)
        try:
            snapshotter = json.loads(await asyncio.to_thread((views / "snapshotter").read_text))
        except (FileNotFoundError, ValueError):
            return
        for target in await asyncio.to_thread(lambda: [p for p in views.iterdir() if p.name.isdigit()]):
            await asyncio.to_thread(Subpaths.unmount, target)
            with contextlib.suppress(rt.NotFound):
                await self._rt.remove_snapshot(snapshotter, _key(cid, int(target.name)))
        await asyncio.to_thread(shutil.rmtree, views, True)

    async def forget(self, cid: str) -> None:
        await self.release(cid)
        if (self._pin_root / cid).exists():
            await self._pins.forget(cid)


def _key(cid: str, index: int) -> str:
    return f"{cid}-image-mount-{index}"


async def _mount(mount: dict[str, Any], target: str) -> None:
    options = [o for o in mount.get("options") or [] if o != "rw"] + ["ro"]
    proc = await asyncio.create_subprocess_exec(
        "mount", "-t", str(mount.get("type")), "-o", ",".join(options), str(mount.get("source")), target,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise Internal(f"cannot mount the image at {target}: {err.decode(errors='replace').strip()}")
