"""The event journals of both daemons: replay across a restart (a new bus on the same file), paging past one
read, retention by count and age, and dockerd's time arguments."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from cli.pyctr.since import since as pyctr_since
from engine import events_journal
from engine.api.timestamps import duration_ns, timestamp_ns
from engine.containers.store import Container
from engine.events import EventBus, EventFilter
from engine.events_journal import Journal, Retention
from runtime.events import journal as runtime_journal
from runtime.events.exchange import Exchange


def _container(name: str) -> Container:
    return Container(id="ab" * 32, name=name, created=0, image="busybox", image_ref="docker.io/library/busybox:latest",
                     image_id="sha256:" + "cd" * 32, path="sh", args=[], config={"Labels": {}}, host_config={})


async def _bus(path: Path, retention: Retention = Retention()) -> tuple[EventBus, Journal]:
    journal = Journal(path, retention)
    return EventBus(recent=4, journal=journal, last_seq=journal.open()), journal


async def test_engine_events_replay_from_the_journal_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    bus, journal = await _bus(path)
    t0 = time.time_ns()
    for i in range(2500):  # past the ring and past one page of the journal
        bus.container(_container(f"c{i}"), "create")
    await journal.close()

    bus, journal = await _bus(path)
    bus.container(_container("after"), "start")
    replay, sub = bus.subscribe(t0, None, EventFilter({}))
    bus.container(_container("live"), "die")  # after the subscription: live only, not replayed
    got = [ev.attributes["name"] async for ev in replay]
    assert got == [f"c{i}" for i in range(2500)] + ["after"]
    assert (await sub.next()).attributes["name"] == "live"  # type: ignore[union-attr]

    replay, _ = bus.subscribe(t0, None, EventFilter({"container": ["c1999"]}))
    assert [ev.action async for ev in replay] == ["create"]
    # `until` alone replays everything recorded up to it, as dockerd does.
    replay, _ = bus.subscribe(None, t0 - 1, EventFilter({}))
    assert [ev async for ev in replay] == []
    replay, _ = bus.subscribe(None, time.time_ns(), EventFilter({}))
    assert len([ev async for ev in replay]) == 2502
    await journal.close()


async def test_retention_keeps_the_newest_count_and_drops_the_old(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_journal, "TRIM_INTERVAL", 0.0)
    bus, journal = await _bus(tmp_path / "events.db", Retention(count=10, age=0))
    for i in range(30):
        bus.container(_container(f"c{i}"), "create")
    await journal.flushed()
    bus.container(_container("last"), "create")  # a batch of its own, trimmed after it
    await journal.flushed()
    replay, _ = bus.subscribe(0, None, EventFilter({}))
    assert [ev.attributes["name"] async for ev in replay] == [f"c{i}" for i in range(21, 30)] + ["last"]

    journal.retention = Retention(count=1000, age=3600)
    old = time.time_ns() - 2 * 3600 * 10**9
    with monkeypatch.context() as m:
        m.setattr(time, "time_ns", lambda: old)
        bus.container(_container("ancient"), "create")
    bus.container(_container("fresh"), "create")
    await journal.flushed()
    replay, _ = bus.subscribe(0, None, EventFilter({}))
    names = [ev.attributes["name"] async for ev in replay]
    assert "ancient" not in names and names[-1] == "fresh"
    await journal.close()


async def test_runtime_exchange_replays_since_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    journal = runtime_journal.Journal(path, runtime_journal.Retention())
    ex = Exchange(journal, journal.open())
    t0 = time.time()
    ex.publish("default", "/containers/create", {"id": "one"})
    ex.publish("other", "/images/create", {"name": "img"})
    await ex.close()

    journal = runtime_journal.Journal(path, runtime_journal.Retention())
    ex = Exchange(journal, journal.open())
    stream = ex.subscribe({"default"}, None, since=t0)
    ex.publish("default", "/tasks/exit", {"id": "one"})
    first, second = await anext(stream), await anext(stream)
    assert (first.topic, first.event, first.timestamp >= t0) == ("/containers/create", {"id": "one"}, True)
    assert second.topic == "/tasks/exit"
    await stream.aclose()  # type: ignore[attr-defined]
    await ex.close()


def test_time_arguments_as_dockerd_reads_them() -> None:
    now = 1_700_000_000 * 10**9
    assert timestamp_ns("1700000000.5", now) == 1_700_000_000_500_000_000
    assert timestamp_ns("12", now) == 12 * 10**9
    assert timestamp_ns("10m", now) == now - 600 * 10**9
    assert timestamp_ns("1h30m", now) == now - 5400 * 10**9
    assert timestamp_ns("2023-11-14T22:13:20Z", now) == 1_700_000_000 * 10**9
    assert duration_ns("1.5s") == 1_500_000_000 and duration_ns("10x") is None and duration_ns("") is None
    with pytest.raises(ValueError, match="neither a Unix timestamp"):
        timestamp_ns("yesterday", now)
    assert runtime_journal.age_seconds("1h30m") == 5400 and runtime_journal.age_seconds("0") == 0
    with pytest.raises(ValueError):
        runtime_journal.age_seconds("7d")
    assert pyctr_since("1700000000.25") == 1700000000.25
    assert abs(pyctr_since("1h30m") - (time.time() - 5400)) < 60
    with pytest.raises(argparse.ArgumentTypeError):
        pyctr_since("yesterday")


async def test_a_dropped_subscriber_that_still_reads_is_told_and_its_stream_ends() -> None:
    import json
    from types import SimpleNamespace

    import aiohttp
    from aiohttp.test_utils import TestServer

    from engine.api.app import build
    from engine.api.routers import events as events_router
    from engine.events import QUEUE_SIZE

    bus = EventBus()
    server = TestServer(build(SimpleNamespace(events=bus), [events_router.register]), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.make_url("/events")) as resp:
                assert resp.status == 200
                for i in range(QUEUE_SIZE + 10):  # no await in between: the handler cannot keep up
                    bus.container(_container(f"c{i}"), "create")
                lines = [json.loads(line) async for line in resp.content]
        assert bus.listeners == 0
        assert lines[-1]["Type"] == "daemon" and lines[-1]["Action"] == "error"
        assert "fell 1024 events behind and was dropped" in lines[-1]["Actor"]["Attributes"]["error"]
        assert [ev["Actor"]["Attributes"]["name"] for ev in lines[:-1]] == [f"c{i}" for i in range(len(lines) - 1)]
    finally:
        await server.close()


def test_retention_settings_of_both_daemons() -> None:
    from pydantic import ValidationError

    from engine.config import Config as EngineConfig
    from runtime.config import Config as RuntimeConfig

    engine = EngineConfig.model_validate({"events-retention": {"count": 5, "age": "1h30m"}, "labels": ["a=b"]})
    assert engine.events_retention.retention() == Retention(5, 5400.0)
    assert EngineConfig().events_retention.retention() == Retention(100_000, 7 * 24 * 3600.0)
    assert EngineConfig.model_validate({"events-retention": {"age": "0"}}).events_retention.retention().age == 0
    for bad in ({"events-retention": {"age": "a week"}}, {"events-retention": {"count": 0}},
                {"events-retention": {"keep": 1}}, {"labels": ["nolabel"]}):
        with pytest.raises(ValidationError):
            EngineConfig.model_validate(bad)
    runtime = RuntimeConfig.model_validate({"events_retention": {"count": 7, "age": "2h"}})
    assert runtime.events_retention.retention() == runtime_journal.Retention(7, 7200.0)
    with pytest.raises(ValidationError):
        RuntimeConfig.model_validate({"events_retention": {"age": "7d"}})
