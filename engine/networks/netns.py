"""Named network namespaces under the engine's exec root: one file per container, bind-mounted.

A namespace pinned by a bind mount outlives every process in it, so a container's network (its
addresses, its published ports) survives the engine, and a restarted engine finds it by path.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
from pathlib import Path

from engine.errors import Internal

_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, container_id: str) -> str:
        return str(self.root / container_id)

    def exists(self, container_id: str) -> bool:
        return os.path.ismount(self.path(container_id))

    async def create(self, container_id: str) -> str:
        path = self.path(container_id)
        if self.exists(container_id):
            return path
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        Path(path).touch(mode=0o600)
        # util-linux's unshare creates the namespace and bind-mounts it on the file in one step.
        proc = await asyncio.create_subprocess_exec("unshare", f"--net={path}", "true",
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise Internal(f"cannot create a network namespace: {err.decode(errors='replace').strip()}")
        return path

    def remove(self, container_id: str) -> None:
        path = self.path(container_id)
        if os.path.ismount(path) and _libc.umount2(path.encode(), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise Internal(f"cannot unmount {path}: {os.strerror(err)}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def present(self) -> list[str]:
        """Container ids with a namespace here, for reconciliation at start."""
        if not self.root.is_dir():
            return []
        return [p.name for p in self.root.iterdir()]
