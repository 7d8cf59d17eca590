"""The build cache's records as last seen, kept in the engine: a cached step then costs no runtime request.

Entries come from the records the builder reads (a lookup) and writes (a step's image, a hit's count), and
they change or go with the runtime's image events, whoever changed the record (`docker builder prune`, an
rmi, the storage budget, a pyctr): a record deleted, or pointed at other content, leaves the index; one
whose labels changed (a hit counted) keeps its entry with the new labels. The index is trusted only while
that event stream is live, from its start (when it is emptied: anything may have changed unseen) to its
end; otherwise every lookup asks the runtime, as it would without an index.

A record read or written just before an event about it could be taken in after that event was applied;
`epoch` (moved by every event that could make what was read stale) tells: an entry is taken in only if none
came meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from engine.images.model import BUILD_PREFIX
from runtime.client import RuntimeError_
from runtime.client.records import Image

log = logging.getLogger("engine.builder.cache")

_TOPICS = ["/images/*"]
_CREATE = "/images/create"
_DELETE = "/images/delete"
_MAX_BACKOFF = 5.0


class IndexRuntime(Protocol):
    def events(self, topics: list[str] | None = None, namespaces: list[str] | None = None,
               announce: bool = False, since: float | None = None) -> AsyncIterator[dict[str, Any]]: ...


class CacheIndex:
    def __init__(self, runtime: IndexRuntime, namespace: str) -> None:
        self._runtime = runtime
        self._namespace = namespace
        self._records: dict[str, Image] = {}
        self._live = False
        self.epoch = 0

    def get(self, name: str) -> Image | None:
        return self._records.get(name) if self._live else None

    def put(self, record: Image, epoch: int) -> None:
        """Take in `record`, read or written when the epoch was `epoch`, unless an entry was dropped since."""
        if self._live and epoch == self.epoch:
            self._records[record.name] = record

    def drop(self, name: str) -> None:
        self.epoch += 1
        self._records.pop(name, None)

    def _reset(self, live: bool) -> None:
        self.epoch += 1
        self._records.clear()
        self._live = live

    def apply(self, message: dict[str, Any]) -> None:
        """One runtime event from the stream."""
        if message.get("status") == "subscribed":
            self._reset(live=True)
            return
        event = message.get("event") or {}
        name = str(event.get("name") or "")
        if not name.startswith(BUILD_PREFIX):
            return
        topic = message.get("topic")
        known = self._records.get(name)
        if topic != _DELETE and known is not None and (event.get("target") or {}).get("digest") == known.target.digest:
            self._records[name] = known.model_copy(update={"labels": dict(event.get("labels") or {})})
        elif topic == _CREATE and known is None:
            return  # a new record: nothing read before it can be stale, and it is taken in when read
        else:
            self.drop(name)

    async def follow(self) -> None:
        """Keep the index by the runtime's image events, for good; resubscribe when cut off."""
        delay = 0.1
        while True:
            try:
                async for message in self._runtime.events(_TOPICS, [self._namespace], announce=True):
                    self.apply(message)
                    delay = 0.1
            except RuntimeError_ as e:
                log.warning("build cache index: runtime events failed (%s); resubscribing in %.1fs", e.message, delay)
            except Exception:  # must not end the daemon's background work
                log.exception("build cache index: runtime events failed; resubscribing in %.1fs", delay)
            finally:
                self._reset(live=False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)
