"""The build cache's in-engine index: trusted only while the runtime's image events are followed, and
whatever an event may have made stale leaves it (or is never taken in)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from engine.builder.cache_index import CacheIndex
from engine.images.model import BUILD_PREFIX
from runtime.client.records import Image

NAME = BUILD_PREFIX + "k1"


def _record(name: str = NAME, digest: str = "sha256:" + "a" * 64, labels: dict[str, str] | None = None) -> Image:
    return Image.model_validate({"name": name, "labels": labels or {},
                                 "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                            "digest": digest, "size": 10}})


def _event(topic: str, record: Image) -> dict[str, Any]:
    return {"topic": topic, "namespace": "ns",
            "event": {"name": record.name, "target": record.target.model_dump(), "labels": record.labels}}


class _Runtime:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.done = asyncio.Event()

    async def events(self, topics: list[str] | None = None, namespaces: list[str] | None = None,
                     announce: bool = False, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        assert topics == ["/images/*"] and namespaces == ["ns"] and announce
        for message in self.messages:
            yield message
        self.done.set()
        await asyncio.Event().wait()


def _live() -> CacheIndex:
    index = CacheIndex(_Runtime([]), "ns")
    index.apply({"status": "subscribed"})
    return index


def test_not_trusted_before_the_stream_is_live() -> None:
    index = CacheIndex(_Runtime([]), "ns")
    index.put(_record(), index.epoch)
    assert index.get(NAME) is None
    index.apply({"status": "subscribed"})
    assert index.get(NAME) is None  # what came before the stream is not known to be current
    index.put(_record(), index.epoch)
    assert index.get(NAME) == _record()


def test_deleted_or_moved_records_leave_relabelled_ones_stay() -> None:
    index = _live()
    index.put(_record(), index.epoch)
    counted = _record(labels={"uses": "2"})
    index.apply(_event("/images/update", counted))
    assert index.get(NAME) == counted
    index.apply(_event("/images/update", _record(digest="sha256:" + "b" * 64)))
    assert index.get(NAME) is None
    index.put(_record(), index.epoch)
    index.apply(_event("/images/delete", _record()))
    assert index.get(NAME) is None
    other = _record(name="busybox:latest")
    index.put(other, index.epoch)
    index.apply(_event("/images/delete", other))  # not a build cache record: not its business
    assert index.get("busybox:latest") == other


def test_a_record_read_before_an_event_about_it_is_not_taken_in() -> None:
    index = _live()
    epoch = index.epoch
    index.apply(_event("/images/delete", _record()))  # while the lookup's answer was on its way
    index.put(_record(), epoch)
    assert index.get(NAME) is None
    epoch = index.epoch
    index.apply(_event("/images/create", _record(name=BUILD_PREFIX + "k2")))  # new records make nothing stale
    index.put(_record(), epoch)
    assert index.get(NAME) == _record()


async def test_follow_keeps_it_live_while_the_stream_lasts() -> None:
    runtime = _Runtime([{"status": "subscribed"}])
    index = CacheIndex(runtime, "ns")
    task = asyncio.create_task(index.follow())
    await runtime.done.wait()
    index.put(_record(), index.epoch)
    assert index.get(NAME) == _record()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert index.get(NAME) is None
