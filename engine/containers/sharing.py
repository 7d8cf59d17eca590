"""The namespaces a container may take from another (`--ipc container:`, `--pid container:`), prepared
before each run and released after it together."""
from __future__ import annotations

from engine.containers.ipc import IpcNamespaces
from engine.containers.pidns import PidNamespaces
from engine.containers.store import Container


class SharedNamespaces:
    def __init__(self, ipc: IpcNamespaces, pid: PidNamespaces) -> None:
        self.ipc = ipc
        self.pid = pid

    async def prepare(self, c: Container) -> None:
        await self.ipc.prepare(c)
        await self.pid.prepare(c)

    async def release(self, cid: str) -> None:
        await self.ipc.release(cid)
        await self.pid.release(cid)

    async def forget(self, cid: str) -> None:
        await self.ipc.forget(cid)
        await self.pid.forget(cid)
