"""What a container's run holds of things outside it, pinned before each run and released after it: the
namespaces it takes from another container (`--ipc container:`, `--pid container:`, `--network container:` of
a container without a network), the volume subpaths and the images it mounts."""
from __future__ import annotations

from collections.abc import Callable

from engine.containers.image_mounts import ImageMounts
from engine.containers.ipc import IpcNamespaces
from engine.containers.donor_namespaces import DonorNamespaces
from engine.containers.store import Container
from engine.containers.subpaths import Subpaths


class RunPins:
    def __init__(self, ipc: IpcNamespaces, pid: DonorNamespaces, net: DonorNamespaces, subpaths: Subpaths,
                 volume_root: Callable[[str], str], images: ImageMounts) -> None:
        self.ipc = ipc
        self.pid = pid
        self.net = net
        self.subpaths = subpaths
        self._volume_root = volume_root
        self.images = images

    async def prepare(self, c: Container) -> None:
        """Before `c`'s task (its volumes already mounted)."""
        await self.ipc.prepare(c)
        await self.pid.prepare(c)
        await self.net.prepare(c)
        for index, v in enumerate(c.volumes):
            if v.get("subpath"):
                await self.subpaths.pin(c.id, index, self._volume_root(v["name"]), v["subpath"])
        await self.images.pin(c)

    async def release(self, cid: str) -> None:
        await self.ipc.release(cid)
        await self.pid.release(cid)
        await self.net.release(cid)
        await self.subpaths.release(cid)
        await self.images.release(cid)

    async def forget(self, cid: str) -> None:
        await self.ipc.forget(cid)
        await self.pid.forget(cid)
        await self.net.forget(cid)
        await self.subpaths.forget(cid)
        await self.images.forget(cid)
