"""The engine's Prometheus metrics: one registry per engine, served at /metrics.

Each engine has a registry of its own (never prometheus_client's global one), so engines built
side by side in one process keep their numbers apart. Per-container values are read at scrape
time (`containers.py`); request latency (`requests.py`) and transfers (`transfers.py`) are
counted as they happen; the event bus is looked at when scraped. An idle engine does no metrics
work at all between scrapes.

`/metrics` is served on the engine's API sockets and, with `--metrics-addr HOST:PORT` (dockerd's
flag and daemon.json key), on a plain-HTTP listener of its own that serves nothing else.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from engine.containers.store import ContainerStore
from engine.events import CONTAINER, IMAGE, NETWORK, VOLUME, Event, EventBus
from engine.metrics.containers import ContainerCollector
from engine.metrics.requests import RequestMetrics
from engine.metrics.transfers import Transfers
from runtime import client as rt

log = logging.getLogger("engine.metrics")

# Without this, every counter and histogram series gets a `_created` gauge beside it (a start time the 0.0.4 text
# format can only carry as a series of its own): twice the series for nothing. A process-wide switch of
# prometheus_client; the daemon is the process.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client

# The text format every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"


class _EventBusCollector(Collector):
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        # The kinds every engine publishes are there from the start, at 0.
        self._published: Tally[str] = Tally(dict.fromkeys((CONTAINER, IMAGE, NETWORK, VOLUME), 0))
        bus.observe(self._count)

    def _count(self, ev: Event) -> None:
        self._published[ev.type] += 1

    def collect(self) -> Iterator[Metric]:
        backlog = self._bus.backlog()
        subscribers = GaugeMetricFamily("pyengine_events_subscribers", "Clients following GET /events.")
        subscribers.add_metric([], len(backlog))
        yield subscribers
        lag = GaugeMetricFamily("pyengine_events_subscriber_lag_events",
                                "Events published and not yet read by the slowest subscriber (one is dropped "
                                "when its queue of 1024 fills).")
        lag.add_metric([], max(backlog, default=0))
        yield lag
        published = CounterMetricFamily("pyengine_events_published", "Events published, by object type.",
                                        labels=["type"])
        for type_, n in sorted(self._published.items()):
            published.add_metric([type_], n)
        yield published


class EngineMetrics:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore, bus: EventBus) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestMetrics(self.registry)
        self.transfers = Transfers(self.registry)
        self._containers = ContainerCollector(runtime, store)
        bus.observe(self._containers.observe)
        self.registry.register(self._containers)
        self.registry.register(_EventBusCollector(bus))
        # One scrape at a time: the container sample is shared by the collector until it is written out.
        self._scraping = asyncio.Lock()

    async def scrape(self) -> bytes:
        async with self._scraping:
            await self._containers.refresh()
            return await asyncio.to_thread(generate_latest, self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        body = await self.scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    def install(self, app: web.Application) -> None:
        """/metrics on the API app, and its request timing around every route (before the app starts)."""
        app.middlewares.insert(0, self.requests.middleware)
        app.router.add_get(PATH, self.handle)

    async def listen(self, address: str) -> web.AppRunner:
        """The --metrics-addr listener: plain HTTP, /metrics only."""
        host, port = parse_address(address)
        app = web.Application()
        app.router.add_get(PATH, self.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as e:
            await runner.cleanup()
            raise SystemExit(f"pyengined: cannot serve metrics on {address}: {e.strerror or e}") from None
        log.info("metrics on http://%s:%d%s", host, port, PATH)
        return runner


def parse_address(address: str) -> tuple[str, int]:
    """dockerd's metrics-addr: HOST:PORT ([v6]:PORT for IPv6)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics-addr {address!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)
