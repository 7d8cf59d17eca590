"""Shareable IPC namespaces: what `--ipc shareable` gives and `--ipc container:<id>` joins.

As dockerd does, a shareable container gets, at each start, a fresh IPC namespace and a /dev/shm
tmpfs on the host (64 MiB, dockerd's default size); containers that join it get both, the
namespace for System V IPC and the tmpfs as their /dev/shm for POSIX shared memory. Here the
namespace is pinned on a file (as the engine pins network namespaces) instead of being found
through the donor's pid, so the runtime's spec can name it at create and the donor's restarts
do not change the path. Both go when the donor stops; joining needs the donor running, and fails
in dockerd's words (and statuses) when it is not.
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
from pathlib import Path

from engine.containers.namespaces import donor_ref
from engine.containers.store import Container, ContainerStore
from engine.errors import Conflict, Internal, InvalidArgument

_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)
_SHM_OPTIONS = "nosuid,nodev,noexec,mode=1777,size={size}"
_SHM_SIZE = 64 << 20  # dockerd's default ShmSize


class IpcNamespaces:
    def __init__(self, root: Path, store: ContainerStore) -> None:
        self._root = root
        self._store = store

    def _ns(self, cid: str) -> Path:
        return self._root / cid / "ns"

    def _shm(self, cid: str) -> Path:
        return self._root / cid / "shm"

    def spec_options(self, cid: str) -> tuple[str, dict[str, object]]:
        """The runtime's ipc_mode (the namespace file) and /dev/shm mount for a container sharing `cid`'s IPC.

        The file and the directory exist from now on (the runtime checks bind sources at create); the
        namespace and the tmpfs are put on them at each start of `cid`.
        """
        self._shm(cid).mkdir(parents=True, exist_ok=True, mode=0o1777)
        if not self._ns(cid).exists():  # a namespace already on it refuses a touch
            self._ns(cid).touch(mode=0o600)
        return str(self._ns(cid)), {"type": "bind", "source": str(self._shm(cid)), "destination": "/dev/shm",
                                    "options": ["rbind", "rw"]}

    async def prepare(self, c: Container) -> None:
        """Before `c`'s task: a fresh namespace and tmpfs if it is shareable; a running donor if it joins one."""
        mode = c.host_config.get("IpcMode")
        if mode == "shareable":
            await self.release(c.id)
            self.spec_options(c.id)
            await _run("unshare", f"--ipc={self._ns(c.id)}", "true")
            size = c.host_config.get("ShmSize") or _SHM_SIZE
            await _run("mount", "-t", "tmpfs", "-o", _SHM_OPTIONS.format(size=size), "shm", str(self._shm(c.id)))
            return
        ref = donor_ref(mode)
        if ref is None:
            return
        donor = self._store.find(ref)
        if donor is None:
            raise InvalidArgument(f"No such container: {ref}")
        if not donor.state.running:
            raise Conflict(f"Container {donor.id} is not running")
        if not os.path.ismount(self._ns(donor.id)):
            raise InvalidArgument(f"can't join IPC of container {donor.id}: non-shareable IPC (hint: use "
                                  "IpcMode:shareable for the donor container)")

    async def release(self, cid: str) -> None:
        """After `cid`'s task: its namespace and tmpfs go (joiners still running keep what they hold)."""
        await asyncio.to_thread(self._unmount, cid)

    async def forget(self, cid: str) -> None:
        await self.release(cid)
        await asyncio.to_thread(shutil.rmtree, self._root / cid, True)

    def _unmount(self, cid: str) -> None:
        for path in (self._ns(cid), self._shm(cid)):
            if os.path.ismount(path) and _libc.umount2(str(path).encode(), _MNT_DETACH) != 0:
                err = ctypes.get_errno()
                raise Internal(f"cannot unmount {path}: {os.strerror(err)}")


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise Internal(f"{argv[0]} for a shareable IPC namespace failed: {err.decode(errors='replace').strip()}")
