"""Named network namespaces for pod sandboxes, pinned by bind mounts (`ip netns add` semantics).

A short-lived helper (util-linux `unshare --net=FILE true`) creates a network namespace and
bind-mounts its /proc/<pid>/ns/net on FILE before it exits; the mount keeps the namespace alive with
no process in it, so the CNI plugins can configure it before the pause container exists, it survives
the runtime, and a restarted runtime finds it by path. Removing is unmount + unlink: the namespace
dies with its last reference (the pod's processes, if any are left), taking its veth ends with it.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from runtime.cri.cni.config import check_name
from runtime.errors import Internal
from runtime.mount import is_mountpoint, unmount


class NetnsDir:
    """The namespaces under one directory (the runtime's `<state>/cri/netns`)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def path(self, name: str) -> str:
        check_name("network namespace name", name)
        return str(self.root / name)

    def exists(self, name: str) -> bool:
        """True if the namespace file is there and still pins a namespace."""
        path = self.path(name)
        return os.path.exists(path) and is_mountpoint(path)

    async def create(self, name: str) -> str:
        path = self.path(name)
        if await asyncio.to_thread(self.exists, name):
            return path
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        Path(path).touch(mode=0o600)
        proc = await asyncio.create_subprocess_exec(
            "unshare", f"--net={path}", "true",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise Internal(f"cannot create network namespace {name}: {err.decode(errors='replace').strip()}")
        return path

    async def remove(self, name: str) -> None:
        """Unmount and unlink; a namespace already gone is no error."""
        path = self.path(name)
        if os.path.exists(path):
            await asyncio.to_thread(unmount, path, True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    async def create_stand_in(self, name: str, ifname: str, addresses: list[str]) -> str:
        """A namespace holding an `ifname` link with `addresses`, in place of a pod's lost namespace.

        The bridge plugin's DEL removes its masquerade rules only for the addresses it finds on the
        interface inside the namespace, and skips that step when CNI_NETNS is empty; after a crash
        that lost the pod's namespace this gives it the interface to find, so nothing stays behind.
        """
        await self.remove(name)  # one a crash left half-prepared
        path = await self.create(name)
        # A veth pair with both ends inside: the dummy link type is not built into every kernel.
        script = f"link add {ifname} type veth peer name standin0\n" + "".join(
            f"addr add {a} dev {ifname}\n" for a in addresses)
        proc = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={path}", "ip", "-batch", "-", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate(script.encode())
        if proc.returncode != 0:
            await self.remove(name)
            raise Internal(f"cannot prepare network namespace {name}: {err.decode(errors='replace').strip()}")
        return path

    def names(self) -> list[str]:
        """Every namespace file here, for the sweep at start (the caller keeps the live pods')."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith("."))
