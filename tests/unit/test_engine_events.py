"""The engine's event bus: Docker's filter semantics, replay windows, and slow subscribers being dropped."""
from __future__ import annotations

import pytest

from engine import events
from engine.containers.store import Container
from engine.errors import InvalidArgument
from engine.events import EventBus, EventFilter


def _container(name: str = "web", labels: dict[str, str] | None = None) -> Container:
    return Container(id="ab" * 32, name=name, created=0, image="busybox", image_ref="docker.io/library/busybox:latest",
                     image_id="sha256:" + "cd" * 32, path="sh", args=[], config={"Labels": labels or {}},
                     host_config={})


def _matches(filters: dict[str, list[str]], ev: events.Event) -> bool:
    return EventFilter(filters)(ev)


def test_wire_form_of_container_and_image_events() -> None:
    bus = EventBus()
    c = bus.container(_container(labels={"team": "a"}), "die", exitCode="3").docker()
    assert list(c) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert c["Actor"] == {"ID": "ab" * 32, "Attributes": {"team": "a", "image": "busybox", "name": "web",
                                                         "exitCode": "3"}}
    assert (c["status"], c["from"], c["time"]) == ("die", "busybox", c["timeNano"] // 10**9)
    i = bus.image_pulled("docker.io/library/busybox:latest").docker()
    assert "from" not in i and (i["id"], i["Actor"]["Attributes"]) == ("busybox:latest", {"name": "busybox"})


def test_filters() -> None:
    bus = EventBus()
    c = bus.container(_container(labels={"team": "a"}), "exec_start: sh -c true", execID="e1")
    tag = bus.image("tag", "sha256:" + "cd" * 32, "myrepo:v1")
    assert _matches({"container": ["web"]}, c) and _matches({"container": ["abab"]}, c)
    assert not _matches({"container": ["web"]}, tag)
    assert _matches({"event": ["exec_start"]}, c) and not _matches({"event": ["exec_create"]}, c)
    assert _matches({"label": ["team"]}, c) and _matches({"label": ["team=a", "name=web"]}, c)
    assert not _matches({"label": ["team=b"]}, c)
    assert _matches({"image": ["busybox"]}, c) and not _matches({"image": ["busybox:latest"]}, c)
    assert _matches({"image": ["myrepo"]}, tag) and _matches({"image": ["myrepo:v1"]}, tag)
    assert _matches({"type": ["image", "volume"]}, tag) and not _matches({"type": ["container"]}, tag)
    assert _matches({"scope": ["local"]}, c) and not _matches({"scope": ["swarm"]}, c)
    assert not _matches({"network": ["x"]}, c)
    with pytest.raises(InvalidArgument, match="invalid filter 'nope'"):
        EventFilter({"nope": ["x"], "type": ["container"]})


async def test_replay_window_then_live_events() -> None:
    bus = EventBus(recent=3)
    first = [bus.container(_container(), a) for a in ("create", "start", "die", "destroy")]
    replay, sub = bus.subscribe(first[1].time_nano, first[2].time_nano, EventFilter({}))
    assert [e.action async for e in replay] == ["start", "die"]
    replay, sub = bus.subscribe(0, None, EventFilter({"event": ["destroy", "create"]}))
    assert [e.action async for e in replay] == ["destroy"]  # "create" fell out of the ring
    assert [e async for e in bus.subscribe(None, None, EventFilter({}))[0]] == []  # without since, what comes next
    bus.container(_container(), "start")
    bus.container(_container(), "create")
    assert (await sub.next()).action == "create"
    bus.unsubscribe(sub)
    bus.container(_container(), "create")
    assert sub.queue.empty()


async def test_a_subscriber_that_falls_behind_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "QUEUE_SIZE", 4)
    bus = EventBus()
    _, slow = bus.subscribe(None, None, EventFilter({}))
    _, picky = bus.subscribe(None, None, EventFilter({"event": ["destroy"]}))
    for _ in range(10):
        bus.container(_container(), "start")  # never waits, however far behind `slow` is
    bus.container(_container(), "destroy")
    assert slow.dropped and not picky.dropped
    got = [await slow.next() for _ in range(5)]  # what was queued before the drop, then the end
    assert got[-1] is None and all(e is not None for e in got[:-1])
    assert (await picky.next()).action == "destroy"
