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
# Written for "all", it turns IPv6 off on every interface there and on those made after (the default's too).
DISABLE_IPV6 = "/proc/sys/net/ipv6/conf/all/disable_ipv6"
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, container_id: str) -> str:
        return str(self.root / container_id)

    def exists(self, container_id: str) -> bool:
        return os.path.ismount(self.path(container_id))

    async def create(self, container_id: str, *, ipv6: bool = True) -> str:
        """The container's namespace, made if it is not there. Without `ipv6` (none of its networks has it) IPv6
        is off in it from the start, loopback included, as libnetwork turns it off in a new sandbox."""
        path = self.path(container_id)
        if self.exists(container_id):
            return path
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        Path(path).touch(mode=0o600)
        # util-linux's unshare creates the namespace and bind-mounts it on the file in one step; what it runs runs
        # in the namespace (/proc/sys/net is that namespace's; a host without IPv6 has no such file).
        inside = ["true"] if ipv6 else ["sh", "-c", f"[ ! -e {DISABLE_IPV6} ] || echo 1 > {DISABLE_IPV6}"]
        proc = await asyncio.create_subprocess_exec("unshare", f"--net={path}", *inside,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise Internal(f"cannot create a network namespace: {err.decode(errors='replace').strip()}")
        return path

    async def allow_ipv6(self, path: str) -> None:
        """IPv6 for the interfaces made from now on in the namespace at `path` (a network with IPv6 connected to a
        container that had none): those already there keep theirs, as libnetwork turns it on per interface."""
        default = DISABLE_IPV6.replace("/all/", "/default/")
        proc = await asyncio.create_subprocess_exec("nsenter", f"--net={path}", "sh", "-c",
                                                    f"[ ! -e {default} ] || echo 0 > {default}",
                                                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise Internal(f"cannot turn IPv6 on in {path}: {err.decode(errors='replace').strip()}")

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
