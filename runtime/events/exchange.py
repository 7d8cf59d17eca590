"""Event fan-out: publishers never block; each subscriber has a bounded queue.

A subscriber that falls behind loses its stream (it is told why) rather than
slowing every publisher: the daemon's progress never depends on a slow reader.
With a journal (runtime/events/journal.py) every envelope is also recorded, and a
subscriber can ask for the recorded ones from a time on, across restarts.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

from runtime.events.journal import Journal

log = logging.getLogger("runtime.events")

QUEUE_SIZE = 1024


@dataclass
class Envelope:
    timestamp: float
    namespace: str
    topic: str
    event: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "namespace": self.namespace, "topic": self.topic, "event": self.event}


class _Overflow:
    pass


class Exchange:
    def __init__(self, journal: Journal | None = None, last_seq: int = 0) -> None:
        self._subscribers: set[asyncio.Queue[Envelope | _Overflow]] = set()
        self.journal = journal
        self._seq = last_seq

    def backlog(self) -> list[int]:
        """How many events wait in each subscriber's queue (how far behind it is)."""
        return [q.qsize() for q in self._subscribers]

    def publish(self, namespace: str, topic: str, event: dict[str, Any]) -> None:
        now = time.time_ns()
        env = Envelope(now / 1e9, namespace, topic, event)
        log.debug("event topic=%s namespace=%s", topic, namespace)
        self._seq += 1
        if self.journal is not None:
            self.journal.append(self._seq, now, env.wire())
        for q in list(self._subscribers):
            try:
                q.put_nowait(env)
            except asyncio.QueueFull:
                self._subscribers.discard(q)
                q.get_nowait()
                q.put_nowait(_Overflow())

    def subscribe(
        self, namespaces: set[str] | None = None, topics: list[str] | None = None, since: float | None = None
    ) -> AsyncIterator[Envelope]:
        """The recorded envelopes from `since` on (with a journal), then the live ones."""
        # Subscribed now, before the replay is read or the caller iterates: nothing published meanwhile is lost,
        # nothing is sent twice.
        q: asyncio.Queue[Envelope | _Overflow] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(q)
        return self._stream(q, self._seq, namespaces, topics, since)

    async def _stream(self, q: asyncio.Queue[Envelope | _Overflow], mark: int, namespaces: set[str] | None,
                      topics: list[str] | None, since: float | None) -> AsyncIterator[Envelope]:
        def wanted(env: Envelope) -> bool:
            return ((not namespaces or env.namespace in namespaces)
                    and (not topics or any(_topic_match(t, env.topic) for t in topics)))

        try:
            if since is not None and self.journal is not None:
                async for rec in self.journal.read(int(since * 1e9), None, mark):
                    env = Envelope(**rec.data)
                    if wanted(env):
                        yield env
            while True:
                item = await q.get()
                if isinstance(item, _Overflow):
                    raise OverflowError("event subscriber fell behind and was dropped")
                if wanted(item):
                    yield item
        finally:
            self._subscribers.discard(q)

    async def close(self) -> None:
        if self.journal is not None:
            await self.journal.close()


def _topic_match(pattern: str, topic: str) -> bool:
    """'/images/create' exact, '/images/*' or '/images/' prefix."""
    if pattern.endswith("*"):
        return topic.startswith(pattern[:-1])
    if pattern.endswith("/"):
        return topic.startswith(pattern)
    return topic == pattern
