"""Event fan-out: publishers never block; each subscriber has a bounded queue.

A subscriber that falls behind loses its stream (it is told why) rather than
slowing every publisher: the daemon's progress never depends on a slow reader.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

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
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Envelope | _Overflow]] = set()

    def backlog(self) -> list[int]:
        """How many events wait in each subscriber's queue (how far behind it is)."""
        return [q.qsize() for q in self._subscribers]

    def publish(self, namespace: str, topic: str, event: dict[str, Any]) -> None:
        env = Envelope(time.time(), namespace, topic, event)
        log.debug("event topic=%s namespace=%s", topic, namespace)
        for q in list(self._subscribers):
            try:
                q.put_nowait(env)
            except asyncio.QueueFull:
                self._subscribers.discard(q)
                q.get_nowait()
                q.put_nowait(_Overflow())

    async def subscribe(
        self, namespaces: set[str] | None = None, topics: list[str] | None = None
    ) -> AsyncIterator[Envelope]:
        q: asyncio.Queue[Envelope | _Overflow] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(q)
        try:
            while True:
                env = await q.get()
                if isinstance(env, _Overflow):
                    raise OverflowError("event subscriber fell behind and was dropped")
                if namespaces and env.namespace not in namespaces:
                    continue
                if topics and not any(_topic_match(t, env.topic) for t in topics):
                    continue
                yield env
        finally:
            self._subscribers.discard(q)


def _topic_match(pattern: str, topic: str) -> bool:
    """'/images/create' exact, '/images/*' or '/images/' prefix."""
    if pattern.endswith("*"):
        return topic.startswith(pattern[:-1])
    if pattern.endswith("/"):
        return topic.startswith(pattern)
    return topic == pattern
