"""The engine's Prometheus metrics, kept per engine and served at /metrics.

Each engine keeps numbers of its own (never prometheus_client's global registry), so engines built
side by side in one process keep them apart. Per-container values are read at scrape time
(`containers.py`); request latency (`requests.py`) and transfers (`transfers.py`) are counted as
they happen, as plain numbers (`tally.py`); the event bus is looked at when scraped. A scrape writes
them out with prometheus_client (`exposition.py`), which an engine loads only when first scraped.
An idle engine does no metrics work at all between scrapes.

`/metrics` is served on the engine's API sockets and, with `--metrics-addr HOST:PORT` (dockerd's
flag and daemon.json key), on a plain-HTTP listener of its own that serves nothing else.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from typing import TYPE_CHECKING

from aiohttp import web

from engine.containers.store import ContainerStore
from engine.events import CONTAINER, IMAGE, NETWORK, VOLUME, Event, EventBus
from engine.lazy import Lazy
from engine.metrics.containers import ContainerSampler
from engine.metrics.requests import RequestMetrics
from engine.metrics.transfers import Transfers
from runtime import client as rt

if TYPE_CHECKING:
    from engine.metrics.exposition import Exposition

log = logging.getLogger("engine.metrics")

# The text format every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"


class _EventCounts:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        # The kinds every engine publishes are there from the start, at 0.
        self.published: Tally[str] = Tally(dict.fromkeys((CONTAINER, IMAGE, NETWORK, VOLUME), 0))
        bus.observe(self._count)

    def _count(self, ev: Event) -> None:
        self.published[ev.type] += 1


class EngineMetrics:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore, bus: EventBus) -> None:
        self.requests = RequestMetrics()
        self.transfers = Transfers()
        self._containers = ContainerSampler(runtime, store)
        bus.observe(self._containers.observe)
        self._events = _EventCounts(bus)
        # prometheus_client comes with the first scrape (engine/lazy.py): counting needs none of it.
        self._exposition = Lazy(_exposition)
        # One scrape at a time: the container sample is shared until it is written out.
        self._scraping = asyncio.Lock()

    async def scrape(self) -> bytes:
        async with self._scraping:
            await self._containers.refresh()
            # Copies taken on the event loop, the only one that changes the numbers; written out in a thread.
            return await asyncio.to_thread(
                self._exposition.get().render, self.requests.seconds.snapshot(), self.transfers.bytes.snapshot(),
                self.transfers.seconds.snapshot(), self._containers.rows, self._events.bus.backlog(),
                list(self._events.published.items()))

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


def _exposition() -> Exposition:
    from engine.metrics.exposition import Exposition
    return Exposition()
