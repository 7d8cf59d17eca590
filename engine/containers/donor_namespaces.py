"""Joining another container's namespace by its init: `--pid container:<ref>`, and `--network container:<ref>`
where that container has no network of the engine's (`--network none`: the namespace runc made it).

dockerd names the donor's namespace through its init's pid each time the joiner starts. Here the
runtime's spec is written at create, so it names a file of the joiner's own, and each start of the
joiner pins on that file the namespace of the donor's init as it runs then; the pin goes when the
joiner's run ends. The donor must be running at each start (dockerd's words and statuses). When the
donor's init exits, the kernel kills every process left in its PID namespace: the joiner's run ends with
SIGKILL, as under dockerd.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from engine.containers.namespaces import donor_ref
from engine.containers.store import Container, ContainerStore
from engine.errors import Conflict, Internal, NotFound

_MS_BIND = 0x1000
_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


class DonorNamespaces:
    """One kind of namespace (`pid`, `net`) joined through the HostConfig field naming the donor; `joins` says
    whether a donor's is joined this way (a network the engine made is joined by its own file instead)."""

    def __init__(self, root: Path, store: ContainerStore, kind: str, field: str, what: str, stopped: str,
                 joins: Callable[[Container], bool] = lambda donor: True) -> None:
        self._root = root
        self._store = store
        self._kind, self._field, self._what, self._joins = kind, field, what, joins
        self._stopped = stopped  # dockerd's words for a donor that is not running, with {id}

    def _pin(self, cid: str) -> Path:
        return self._root / cid / self._kind

    def spec_path(self, cid: str) -> str:
        """The namespace file the runtime's spec names for `cid`; it exists from now on (the runtime checks
        namespace paths at create) and holds a namespace only while `cid` runs."""
        pin = self._pin(cid)
        pin.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not pin.exists():
            pin.touch(mode=0o600)
        return str(pin)

    async def prepare(self, c: Container) -> None:
        """Before `c`'s task: the namespace of its donor's running init, pinned where its spec looks."""
        ref = donor_ref(c.host_config.get(self._field))
        if ref is None:
            return
        donor = self._store.find(ref)
        if donor is None:
            raise NotFound(f"cannot join {self._what} of a non running container: {ref}: No such container: {ref}")
        if not donor.state.running or not donor.state.pid:
            # Whichever way the namespace is joined (a network the engine made has a file of its own).
            raise Conflict(self._stopped.format(id=donor.id))
        if not self._joins(donor):
            return
        await asyncio.to_thread(self._bind, c.id, donor.state.pid, donor.id)

    def _bind(self, cid: str, pid: int, donor_id: str) -> None:
        self._unmount(cid)
        pin = self.spec_path(cid)
        source = f"/proc/{pid}/ns/{self._kind}".encode()
        if _libc.mount(source, pin.encode(), None, _MS_BIND, None) != 0:
            err = ctypes.get_errno()
            # The donor's init has exited since the engine last looked.
            raise Conflict(f"{self._stopped.format(id=donor_id)} ({os.strerror(err)})")

    async def release(self, cid: str) -> None:
        """After `cid`'s task: the pin goes, so the donor's namespace is not held past its run."""
        await asyncio.to_thread(self._unmount, cid)

    async def forget(self, cid: str) -> None:
        await self.release(cid)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(shutil.rmtree, self._root / cid)

    def _unmount(self, cid: str) -> None:
        pin = self._pin(cid)
        if os.path.ismount(pin) and _libc.umount2(str(pin).encode(), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise Internal(f"cannot unmount {pin}: {os.strerror(err)}")


def without_network(donor: Container) -> bool:
    """A donor whose network namespace is runc's (`--network none`): joined through its init, not a file of ours."""
    return donor.host_config.get("NetworkMode") == "none"
