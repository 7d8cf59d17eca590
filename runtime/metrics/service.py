"""The runtime's Prometheus metrics: one registry per daemon, served at /metrics on its socket.

Everything but request latency is read when scraped: tasks by state from the task table,
content bytes from the blob store, snapshot bytes from each snapshotter (committed snapshots as
measured at commit, active ones and views measured then), the event exchange's subscribers.
Nothing runs between scrapes. A registry of its own per daemon (never prometheus_client's
global one) keeps daemons built in one process apart.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from runtime.content.local import LocalStore
from runtime.errors import NotFound
from runtime.metrics.requests import histogram, timing
from runtime.services import Services
from runtime.snapshots.local import LocalSnapshotter
from runtime.snapshots.snapshotter import Kind, Usage
from runtime.tasks.state import Status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"

# Without this, every counter and histogram series gets a `_created` gauge beside it (a start time the 0.0.4 text
# format can only carry as a series of its own): twice the series for nothing. A process-wide switch of
# prometheus_client; the daemon is the process.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client


@dataclass
class _Sample:
    tasks: dict[tuple[str, str], int] = field(default_factory=dict)
    blobs: int = 0
    blob_bytes: int = 0
    ingests: int = 0
    ingest_bytes: int = 0
    snapshots: dict[str, dict[Kind, Usage]] = field(default_factory=dict)
    backlog: list[int] = field(default_factory=list)


def _content(store: LocalStore) -> tuple[int, int, int, int]:
    """Blobs and their bytes, ingests in progress and the bytes they hold."""
    blobs = size = 0
    for digest in store.walk():
        try:
            size += store.size(digest)
            blobs += 1
        except NotFound:
            continue  # collected while counting
    ingests = store.ingests()
    return blobs, size, len(ingests), sum(i.offset for i in ingests)


class RuntimeCollector(Collector):
    def __init__(self, services: Services) -> None:
        self._s = services
        self._sample = _Sample()

    async def refresh(self) -> None:
        s = self._s
        sample = _Sample(tasks=s.tasks.census(), backlog=s.events.backlog())
        sample.blobs, sample.blob_bytes, sample.ingests, sample.ingest_bytes = await asyncio.to_thread(
            _content, s.content.store)
        for name, service in sorted(s.snapshots.items()):
            if isinstance(service.backend, LocalSnapshotter):
                sample.snapshots[name] = await service.backend.usage_by_kind()
        self._sample = sample

    def collect(self) -> Iterator[Metric]:
        sample = self._sample
        tasks = GaugeMetricFamily("pyruntimed_tasks", "Tasks by namespace and state.", labels=["namespace", "state"])
        for ns in sorted({ns for ns, _ in sample.tasks}):
            for status in Status:
                tasks.add_metric([ns, status.value], sample.tasks.get((ns, status.value), 0))
        yield tasks
        for name, text, value in (
            ("pyruntimed_content_blobs", "Blobs in the content store.", sample.blobs),
            ("pyruntimed_content_bytes", "Bytes of the blobs in the content store (each blob once).",
             sample.blob_bytes),
            ("pyruntimed_content_ingests", "Ingests (downloads and uploads being written) in progress.",
             sample.ingests),
            ("pyruntimed_content_ingest_bytes", "Bytes written so far by the ingests in progress.",
             sample.ingest_bytes),
            ("pyruntimed_events_subscribers", "Subscribers of the event stream (GET /v1/events).",
             len(sample.backlog)),
            ("pyruntimed_events_subscriber_lag_events",
             "Events published and not yet read by the slowest subscriber (one is dropped when its queue fills).",
             max(sample.backlog, default=0)),
        ):
            family = GaugeMetricFamily(name, text)
            family.add_metric([], value)
            yield family
        size = GaugeMetricFamily("pyruntimed_snapshot_bytes", "Disk space used by snapshots, by snapshotter and kind.",
                                 labels=["snapshotter", "kind"])
        inodes = GaugeMetricFamily("pyruntimed_snapshot_inodes", "Inodes used by snapshots, by snapshotter and kind.",
                                   labels=["snapshotter", "kind"])
        for name, kinds in sample.snapshots.items():
            for kind, usage in kinds.items():
                size.add_metric([name, kind.value], usage.size)
                inodes.add_metric([name, kind.value], usage.inodes)
        yield size
        yield inodes


class RuntimeMetrics:
    def __init__(self, services: Services | None) -> None:
        self.registry = CollectorRegistry()
        self.requests = histogram(self.registry)
        # The outermost middleware: it sees every answer, errors included.
        self.timing = timing(self.requests)
        self._collector = RuntimeCollector(services)  # type: ignore[arg-type]
        self.registry.register(self._collector)
        # One scrape at a time: the collector's sample is shared until it is written out.
        self._scraping = asyncio.Lock()

    async def scrape(self) -> bytes:
        async with self._scraping:
            await self._collector.refresh()
            return await asyncio.to_thread(generate_latest, self.registry)

    def install(self, app: web.Application) -> None:
        """GET /metrics (left out of the OpenAPI document: it is no JSON API)."""
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=await self.scrape(), headers={"Content-Type": CONTENT_TYPE})

        app.router.add_get(PATH, metrics)
