"""GET /events: the engine's events, replayed from `since` and streamed until `until` (CLIENT-FLOWS §5.15)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Mapping

from aiohttp import web

from engine.api.app import Router
from engine.api.query import filters
from engine.api.streams import disconnected, open_stream, until
from engine.backend import Backend
from engine.errors import InvalidArgument
from engine.events import Event, EventFilter, Subscription

_TIMESTAMP = re.compile(r"(\d+)(?:\.(\d+))?")


def timestamp_ns(q: Mapping[str, str], name: str) -> int | None:
    """Unix seconds with an optional fraction, as clients send them (the CLI turns durations and dates into these)."""
    raw = q.get(name, "")
    if not raw:
        return None
    m = _TIMESTAMP.fullmatch(raw.strip())
    if m is None:
        raise InvalidArgument(f"invalid value for {name}: {raw!r} is not a Unix timestamp")
    return int(m.group(1)) * 1_000_000_000 + int((m.group(2) or "")[:9].ljust(9, "0"))


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
                for ev in replay:
                    await resp.write(_line(ev))
                if until_ns is None or until_ns > time.time_ns():
                    await until(_follow(resp, sub, until_ns), disconnected(request))
        finally:
            b.events.unsubscribe(sub)
        return resp

    r.add("GET", "/events", events)
