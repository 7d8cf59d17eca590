"""GET /events: the engine's events, replayed from `since` and streamed until `until` (CLIENT-FLOWS §5.15).

A subscriber the bus dropped for falling behind gets a last `daemon error` event saying so, then the end of
its stream; one that stopped reading has its connection cut: it must not hold a handler forever.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from engine.api.app import Router
from engine.api.query import filters
from engine.api.streams import disconnected, open_stream, until
from engine.backend import Backend
from engine.errors import InvalidArgument
from engine.api.timestamps import timestamp_ns as parse_timestamp
from engine.events import QUEUE_SIZE, Event, EventFilter, Subscription

log = logging.getLogger("engine.api.events")

# How long a dropped subscriber gets to take what was queued for it, and then its last event, before its
# connection is cut.
FAREWELL_TIMEOUT = 1.0


def timestamp_ns(q: Mapping[str, str], name: str) -> int | None:
    raw = q.get(name, "")
    if not raw:
        return None
    try:
        return parse_timestamp(raw, time.time_ns())
    except ValueError as e:
        raise InvalidArgument(f"invalid value for {name}: {e}") from None


def _line(ev: Event) -> bytes:
    return json.dumps(ev.docker(), separators=(",", ":")).encode() + b"\n"


async def _follow(resp: web.StreamResponse, sub: Subscription, until_ns: int | None) -> None:
    """Live events until `until_ns` (if any), or until the subscription is dropped for falling behind."""
    loop = asyncio.get_running_loop()
    deadline = None if until_ns is None else loop.time() + (until_ns - time.time_ns()) / 1e9
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline):
            while (ev := await sub.next()) is not None:
                await resp.write(_line(ev))


async def _cut_off(sub: Subscription) -> None:
    """Returns a moment after the bus dropped `sub`: time for a reader to take what was queued for it."""
    await sub.gone.wait()
    await asyncio.sleep(FAREWELL_TIMEOUT)


async def _farewell(request: web.Request, resp: web.StreamResponse) -> None:
    message = f"events subscriber fell {QUEUE_SIZE} events behind and was dropped; reconnect with --since to resume"
    log.warning("%s (client %s)", message, request.remote or "unix socket")
    ev = Event("daemon", "error", "", {"error": message}, time.time_ns())
    try:
        async with asyncio.timeout(FAREWELL_TIMEOUT):
            await resp.write(_line(ev))
        return  # it still reads: its stream ends as any other, after this last event
    except (TimeoutError, ConnectionError):
        pass
    if request.transport is not None:
        request.transport.abort()


async def _stream(resp: web.StreamResponse, replay: AsyncIterator[Event], sub: Subscription,
                  until_ns: int | None) -> None:
    async for ev in replay:
        await resp.write(_line(ev))
    if until_ns is None or until_ns > time.time_ns():
        await _follow(resp, sub, until_ns)


def register(r: Router, b: Backend) -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        q = request.query
        since, until_ns = timestamp_ns(q, "since"), timestamp_ns(q, "until")
        if since is not None and until_ns is not None and since > until_ns:
            raise InvalidArgument(f"`since` time ({q['since']}) cannot be after `until` time ({q['until']})")
        replay, sub = b.events.subscribe(since, until_ns, EventFilter(filters(q)))
        try:
            # Headers at once: a client waits for them before it goes on (the SDK's events() call returns then).
            resp = await open_stream(request)
            with contextlib.suppress(ConnectionError):
                await until(_stream(resp, replay, sub, until_ns), disconnected(request), _cut_off(sub))
            if sub.dropped:
                await _farewell(request, resp)
        finally:
            b.events.unsubscribe(sub)
        return resp

    r.add("GET", "/events", events)
