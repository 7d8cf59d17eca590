"""What the engine keeps in memory beside each container record: its lock and whoever waits on it.

Every operation that changes a container's state, and the handling of its exits, takes
the container's lock, so they apply in order and an exit is always matched to the run it
ended. The futures here are settled when the run ends or the container is removed.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TypeVar

from engine.containers.restarts import Backoff
from engine.containers.store import Container, ContainerStore
from engine.errors import NotFound
from runtime.client import RuntimeError_
from runtime.client.attach import Attachment

log = logging.getLogger("engine.containers")

T = TypeVar("T")


@dataclass(eq=False)
class Live:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    exits: list[asyncio.Future[int]] = field(default_factory=list)
    removals: list[asyncio.Future[int]] = field(default_factory=list)
    attachers: list[asyncio.Future[Attachment | None]] = field(default_factory=list)
    # Set when the current run ends: `logs -f` stops there.
    run_over: asyncio.Event = field(default_factory=asyncio.Event)
    backoff: Backoff = field(default_factory=Backoff)
    # Set when a healthcheck's on-failure action asked for a restart: the next exit restarts, whatever the policy.
    health_restart: bool = False
    restart: asyncio.Task[None] | None = None  # a restart policy's pending start
    # The end of the process a stop holding the lock waits for: a second stop signals beside it.
    stopping: asyncio.Future[tuple[int, float]] | None = None
    # The last run's runtime task is known to be deleted, so a removal need not ask again. Unknown (False)
    # after an engine restart: the removal then deletes whatever task there may be.
    task_deleted: bool = False
    # The runtime told of an OOM kill in this run as it happened: its exit does not tell it again.
    oom_told: bool = False

    async def hand_over(self, socket: str) -> None:
        """Connect every attach waiting for this start, before the process can write a byte."""
        for fut in self.attachers:
            if fut.done():
                continue
            try:
                fut.set_result(await Attachment.connect(socket))
            except RuntimeError_ as e:
                log.warning("attach to %s failed: %s", socket, e.message)
                fut.set_result(None)
        self.attachers.clear()


def settle(futures: list[asyncio.Future[T]], value: T) -> None:
    for f in futures:
        if not f.done():
            f.set_result(value)
    futures.clear()


class Lives:
    """The in-memory companions of the records in a ContainerStore."""

    def __init__(self, store: ContainerStore) -> None:
        self.store = store
        self._lives: dict[str, Live] = {}

    def of(self, cid: str) -> Live:
        live = self._lives.get(cid)
        if live is None:
            live = self._lives[cid] = Live()
        return live

    def forget(self, cid: str) -> None:
        self._lives.pop(cid, None)

    def busy(self, cid: str) -> bool:
        """Whether an operation (a start, a stop, the handling of an exit, a removal) holds the container's lock."""
        live = self._lives.get(cid)
        return live is not None and live.lock.locked()

    def current(self, ref: str, cid: str) -> Container:
        """The container again after waiting for its lock: it may have been removed meanwhile."""
        c = self.store.find(cid)
        if c is None:
            raise NotFound(f"No such container: {ref}")
        return c


async def next_start(fut: asyncio.Future[Attachment | None]) -> Attachment | None:
    """An attacher's connection, once the container's next start makes it (Live.attachers)."""
    try:
        return await fut
    except asyncio.CancelledError:
        # Connected by a start just as our client left.
        connected = fut.result() if fut.done() and not fut.cancelled() else None
        if connected is not None:
            connected.close()
        raise
