"""Docker's event stream (`GET /events`): the bus the engine's services publish to.

Every event gets a sequence number and goes to the journal (engine/events_journal.py), so
`docker events --since` replays across restarts and past dockerd's 256 in-memory events; without
a journal (tests) a ring of recent events serves replays. Publishing never waits: every subscriber
has a bounded queue, and one that falls that far behind is dropped (told why, then its stream
ends) rather than slowing the engine.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.containers.store import Container
from engine.errors import InvalidArgument
from engine.events_journal import Journal
from runtime.client import InvalidArgument as BadReference
from runtime.client.reference import familiar, parse

log = logging.getLogger("engine.events")

RECENT = 1024
QUEUE_SIZE = 1024

CONTAINER = "container"
IMAGE = "image"
NETWORK = "network"
VOLUME = "volume"

# Filters naming one kind of object: they match the actor's ID (or a prefix of it) or its name.
_OBJECT_FILTERS = ("config", "container", "daemon", "network", "node", "plugin", "secret", "service", "volume")
FILTERS = frozenset({"event", "image", "label", "scope", "type", *_OBJECT_FILTERS})


@dataclass(frozen=True)
class Event:
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str]
    time_nano: int
    scope: str = "local"

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Event:
        return cls(**data)

    def docker(self) -> dict[str, Any]:
        """The wire form, with the pre-1.22 status/id/from fields clients still read for containers and images."""
        out: dict[str, Any] = {}
        if self.type in (CONTAINER, IMAGE):
            out["status"] = self.action
            if self.actor_id:  # empty for prunes; dockerd omits empty legacy fields
                out["id"] = self.actor_id
            if self.type == CONTAINER and self.attributes.get("image"):
                out["from"] = self.attributes["image"]
        # dockerd's attributes are a Go map, which its JSON encoder writes in key order.
        out.update({"Type": self.type, "Action": self.action,
                    "Actor": {"ID": self.actor_id, "Attributes": dict(sorted(self.attributes.items()))},
                    "scope": self.scope,
                    "time": self.time_nano // 1_000_000_000, "timeNano": self.time_nano})
        return out


def _untagged(name: str) -> str:
    """busybox:latest -> busybox; anything that is no tagged reference stays as it is."""
    try:
        ref = parse(name)
    except BadReference:
        return name
    return ref.familiar_name if ref.tag is not None and ref.digest is None else name


class EventFilter:
    """Docker's event filters: values of one key OR'ed (labels AND'ed), keys AND'ed."""

    def __init__(self, filters: dict[str, list[str]]) -> None:
        unknown = set(filters) - FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter '{min(unknown)}'")
        self._f = {k: set(v) for k, v in filters.items() if v}

    def __call__(self, ev: Event) -> bool:
        f = self._f
        return (self._action(ev.action)
                and ("type" not in f or ev.type in f["type"])
                and ("scope" not in f or ev.scope in f["scope"])
                and all(self._object(key, ev) for key in _OBJECT_FILTERS)
                and self._image(ev)
                and all(self._label(spec, ev.attributes) for spec in f.get("label", ())))

    def _action(self, action: str) -> bool:
        # "exec_start: sh -c …" and "health_status: healthy" are asked for by their first word.
        wanted = self._f.get("event")
        return wanted is None or action in wanted or action.partition(":")[0] in wanted

    def _object(self, key: str, ev: Event) -> bool:
        wanted = self._f.get(key)
        if wanted is None:
            return True
        names = [n for n in (ev.actor_id, ev.attributes.get("name")) if n]
        return any(n == w or n.startswith(w) for n in names for w in wanted)

    def _image(self, ev: Event) -> bool:
        wanted = self._f.get("image")
        if wanted is None:
            return True
        # A container names its image in "image"; an image event names the image itself in "name".
        name = ev.attributes.get("name" if ev.type == IMAGE else "image", "")
        return bool(wanted & {ev.actor_id, name, _untagged(ev.actor_id), _untagged(name)})

    @staticmethod
    def _label(spec: str, attributes: dict[str, str]) -> bool:
        key, sep, value = spec.partition("=")
        return key in attributes and (not sep or attributes[key] == value)


@dataclass(eq=False)
class Subscription:
    """One client's live events; `dropped` once it fell behind and was cut off."""

    wanted: EventFilter
    # Live events after this sequence number; the replay covers the ones up to it.
    mark: int = 0
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    async def next(self) -> Event | None:
        """The next event, or None once the subscription was dropped and what it had queued was taken."""
        # A drop happens on a full queue only, so nobody is waiting in get() when it does.
        if self.dropped and self.queue.empty():
            return None
        return await self.queue.get()


class EventBus:
    def __init__(self, recent: int = RECENT, journal: Journal | None = None, last_seq: int = 0) -> None:
        self._recent: deque[tuple[int, Event]] = deque(maxlen=recent)
        self._subscribers: set[Subscription] = set()
        self._journal = journal
        self._seq = last_seq
        self._observers: list[Callable[[Event], None]] = []

    def observe(self, observer: Callable[[Event], None]) -> None:
        """Have `observer` called with every event as it is published; it must return at once (metrics)."""
        self._observers.append(observer)

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str]) -> Event:
        ev = Event(type_, action, actor_id, dict(attributes), time.time_ns())
        self._seq += 1
        self._recent.append((self._seq, ev))
        if self._journal is not None:
            self._journal.append(self._seq, ev.time_nano, ev.record())
        for observer in self._observers:
            observer(ev)
        for sub in list(self._subscribers):
            if not sub.wanted(ev):
                continue
            try:
                sub.queue.put_nowait(ev)
            except asyncio.QueueFull:
                log.warning("an events subscriber fell %d events behind: dropping it", QUEUE_SIZE)
                self._subscribers.discard(sub)
                sub.dropped = True
                sub.gone.set()
        return ev

    def container(self, c: Container, action: str, **attributes: str) -> Event:
        """A container event: Docker gives its labels, image (as the user named it) and name as attributes."""
        attrs = {**(c.config.get("Labels") or {}), "image": c.image, "name": c.name, **attributes}
        return self.publish(CONTAINER, action, c.id, attrs)

    def image(self, action: str, actor_id: str, name: str, labels: dict[str, str] | None = None) -> Event:
        return self.publish(IMAGE, action, actor_id, {**(labels or {}), "name": name})

    def network(self, action: str, network_id: str, name: str, driver: str, **attributes: str) -> Event:
        """A network event: Docker adds the network's name and driver ("type") to what the action says."""
        return self.publish(NETWORK, action, network_id, {**attributes, "name": name, "type": driver})

    def volume(self, action: str, name: str, attributes: dict[str, str] | None = None,
               driver: str = "local") -> Event:
        """A volume event, named by the volume; mount events add container, destination, propagation, read/write."""
        return self.publish(VOLUME, action, name, {"driver": driver, **(attributes or {})})

    def image_pulled(self, ref: str) -> Event:
        # Docker names a pull by the reference pulled, and the repository as its name.
        r = parse(ref)
        return self.image("pull", familiar(r), r.familiar_name)

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    def backlog(self) -> list[int]:
        """How many events wait in each live subscriber's queue (how far behind it is)."""
        return [sub.queue.qsize() for sub in self._subscribers]

    def subscribe(self, since_ns: int | None, until_ns: int | None,
                  wanted: EventFilter) -> tuple[AsyncIterator[Event], Subscription]:
        """The recorded events asked for (with `since` or `until`) and, from the same instant, the live ones."""
        # No await between taking the mark and subscribing: no event falls between replay and live, or is in both.
        sub = Subscription(wanted, self._seq)
        self._subscribers.add(sub)
        return self._replay(since_ns, until_ns, wanted, sub.mark), sub

    async def _replay(self, since_ns: int | None, until_ns: int | None, wanted: EventFilter,
                      mark: int) -> AsyncIterator[Event]:
        if since_ns is None and until_ns is None:
            return
        # As dockerd: `until` alone replays the recorded events up to it.
        since_ns = since_ns or 0
        if self._journal is not None:
            async for rec in self._journal.read(since_ns, until_ns, mark):
                ev = Event.from_record(rec.data)
                if wanted(ev):
                    yield ev
            return
        for seq, ev in list(self._recent):
            if (seq <= mark and ev.time_nano >= since_ns and (until_ns is None or ev.time_nano <= until_ns)
                    and wanted(ev)):
                yield ev

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
