"""/containers/{id}/attach (hijacked, CLIENT-FLOWS §4) and /containers/{id}/attach/ws (websocket)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from engine.api import versions
from engine.api.app import Router
from engine.api.bridge import ClientStream, Outcome, bridge
from engine.api.hijack import hijack
from engine.api.query import boolean
from engine.api.streams import STDERR, STDOUT, frame, until
from engine.api.websocket import WebSocketClient
from engine.backend import Backend
from engine.containers.state import Status
from engine.containers.stdin import closes_stdin_after_attach, parse_detach_keys
from engine.containers.store import Container
from engine.errors import Conflict, InvalidArgument
from engine.logs.reader import Query
from runtime.client.attach import Attachment

log = logging.getLogger("engine.api.attach")


def register(r: Router, b: Backend) -> None:
    svc = b.containers

    def target(request: web.Request) -> tuple[Container, bytes]:
        """The container and the detach keys; refusals here are still ordinary JSON errors."""
        spec = request.query.get("detachKeys")
        try:
            keys = parse_detach_keys(spec)
        except ValueError:
            raise InvalidArgument(f"Invalid detach keys ({spec}) provided") from None
        c = svc.get(request.match_info["id"])
        if c.state.status == Status.PAUSED:
            raise Conflict(f"container {request.match_info['id']} is paused, unpause the container before attach")
        return c, keys

    async def early_attachment(c: Container, q: Any) -> Attachment | asyncio.Task[Attachment | None] | None:
        """The stdio to stream, asked for before the upgrade: a running container's connected now, a container
        not running yet registered for its next start (its client starts it as soon as it has the upgrade, maybe
        while the logs are still being replayed, and its first bytes are the client's)."""
        if not boolean(q, "stream"):
            return None
        # Only the registration comes before the upgrade: a container that ended as we asked (its exit not yet
        # recorded when the client looked) is waited on after it, so the client gets the 101 and starts it again.
        got = await b.run.attach_now_or_later(c)
        return asyncio.ensure_future(b.run.next_start(got)) if isinstance(got, asyncio.Future) else got

    def release(ready: Attachment | asyncio.Task[Attachment | None] | None) -> None:
        if isinstance(ready, asyncio.Task):
            if not ready.done():
                ready.cancel()
            elif not ready.cancelled() and ready.exception() is None and (att := ready.result()) is not None:
                att.close()
        elif ready is not None:
            ready.close()

    async def pump(conn: ClientStream, c: Container, q: Any, keys: bytes, *, framed: bool, stdin: bool,
                   stdout: bool, stderr: bool, ready: Attachment | asyncio.Task[Attachment | None] | None = None
                   ) -> None:
        """`ready`: the running container's stdio, connected before the upgrade, or the attachment its next start
        makes, asked for before the upgrade."""
        tty = bool(c.config.get("Tty"))
        if boolean(q, "logs") and b.logs.readable(c):
            wanted = {"stdout": stdout, "stderr": stderr}
            async for batch in b.logs.read(c, Query()):
                out = [frame(STDOUT if rec.stream == "stdout" else STDERR, rec.data) if framed else rec.data
                       for rec in batch if wanted[rec.stream]]
                if out:
                    await conn.write(b"".join(out))
        if boolean(q, "stream"):
            if isinstance(ready, asyncio.Task):
                att = await until(ready, conn.lost.wait())
            else:
                att = ready or await until(b.run.attachment(c), conn.lost.wait())
            if att is not None:
                outcome = await bridge(conn, att, tty=tty, framed=framed,
                                       stdin=stdin and bool(c.config.get("OpenStdin")), stdout=stdout, stderr=stderr,
                                       close_stdin=closes_stdin_after_attach(c.config), detach_keys=keys)
                if outcome is Outcome.DETACHED:
                    b.events.container(c, "detach")

    async def attach(request: web.Request) -> web.StreamResponse:
        q = request.query
        c, keys = target(request)
        framed = not c.config.get("Tty")
        # A running container's stdio is connected before the 101: its client acts on the upgrade at once (the
        # CLI's resize makes a shell redraw its prompt), and what that writes must reach the attached stream.
        # A container not running yet gets its attachment asked for before the 101 too: the client starts it as
        # soon as it has the upgrade, maybe while the logs are still being replayed, and its first bytes are ours.
        ready = await early_attachment(c, q)
        try:
            conn = await hijack(request, multiplexed=framed)
            # Past the 101 no error response can be sent: a failure just ends the stream.
            try:
                await pump(conn, c, q, keys, framed=framed, stdin=boolean(q, "stdin"), stdout=boolean(q, "stdout"),
                           stderr=boolean(q, "stderr"), ready=ready)
            except ConnectionError:
                pass
            except Exception:
                log.exception("attach to container=%s failed after the upgrade", c.id)
            await conn.end()
        finally:
            release(ready)
        return conn.response

    async def attach_ws(request: web.Request) -> web.StreamResponse:
        q = request.query
        c, keys = target(request)
        ready = await early_attachment(c, q)
        try:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
        except BaseException:
            release(ready)
            raise
        # Before API 1.42 dockerd attached all three streams whatever the query said.
        chosen = versions.of(request) >= (1, 42)
        stdin = (boolean(q, "stdin") or not chosen) and bool(c.config.get("OpenStdin"))
        conn = WebSocketClient(ws, binary=versions.of(request) >= (1, 28), stdin=stdin)
        try:
            await pump(conn, c, q, keys, framed=False, stdin=stdin, stdout=boolean(q, "stdout") or not chosen,
                       stderr=boolean(q, "stderr") or not chosen, ready=ready)
        except ConnectionError:
            pass
        except Exception:
            log.exception("websocket attach to container=%s failed", c.id)
        finally:
            release(ready)
            await conn.close()
        return ws

    r.add("POST", "/containers/{id}/attach", attach)
    r.add("GET", "/containers/{id}/attach/ws", attach_ws)
