"""/containers/{id}/exec and /exec/{id}: create, start (hijacked or detached), resize, inspect (CLIENT-FLOWS §5.8)."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from engine.api.app import Router
from engine.api.bridge import Outcome, bridge
from engine.api.hijack import Hijacked, hijack
from engine.api.resize import terminal_size
from engine.api.responses import json_response, read_json
from engine.api.streams import STDOUT, frame
from engine.backend import Backend
from engine.containers.execs import ExecConfig, ExecStart, console_size, parse_model
from engine.errors import EngineError
from runtime import client as rt

log = logging.getLogger("engine.api.exec")

# How long a failure waits after the 101 before it is written (see _say).
_AFTER_UPGRADE = 0.05


def register(r: Router, b: Backend) -> None:
    execs = b.execs

    async def create(request: web.Request) -> web.Response:
        config = parse_model(ExecConfig, await read_json(request))
        created = execs.create(request.match_info["id"], config)
        return json_response({"Id": created.id}, 201)

    async def start(request: web.Request) -> web.StreamResponse:
        body = parse_model(ExecStart, await read_json(request, optional=True))
        e = execs.get(request.match_info["id"])
        if (size := console_size(body.ConsoleSize)) is not None:
            e.size = size
        if body.Detach:
            await execs.start_detached(e)
            return web.Response(status=200)
        c = e.config
        # As dockerd: the start request's Tty decides the framing, the exec's own Tty the detach keys.
        framed = not body.Tty
        # A container that cannot take an exec is an ordinary JSON error; what goes wrong with the exec itself
        # (a second start, a user the image lacks, a missing program) comes after the 101, in the stream, on
        # stdout, where dockerd writes it. The CLI then reads the exit code (126/127) from inspect.
        execs.check_container(e)
        try:
            att = await execs.prepare(e, attach=True)
        except (EngineError, rt.RuntimeError_) as err:
            conn = await hijack(request, multiplexed=framed)
            await _say(conn, err.message, framed)
            await conn.end()
            return conn.response
        assert att is not None
        conn = await hijack(request, multiplexed=framed)
        try:
            await execs.launch(e)
        except rt.RuntimeError_ as err:
            att.close()
            # runc's refusal, in the words dockerd passes on from containerd.
            await _say(conn, f"OCI runtime exec failed: {err.message}: unknown", framed)
            await conn.end()
            return conn.response
        # Past the 101 no error response can be sent: a failure just ends the stream.
        try:
            outcome = await bridge(conn, att, tty=bool(c.Tty), framed=framed, stdin=bool(c.AttachStdin),
                                   stdout=bool(c.AttachStdout), stderr=bool(c.AttachStderr), close_stdin=True,
                                   detach_keys=e.detach_keys)
            if outcome is Outcome.DETACHED:
                execs.detached(e)
            if outcome is Outcome.EXITED:
                # The CLI reads the exit code as soon as the stream ends.
                await execs.finish(e)
            else:
                execs.finish_later(e)
        except Exception:
            log.exception("exec=%s failed after the upgrade", e.id)
        await conn.end()
        return conn.response

    async def resize(request: web.Request) -> web.Response:
        height, width = terminal_size(request.query)
        await execs.resize(execs.get(request.match_info["id"]), height, width)
        return web.Response(status=200)

    async def inspect(request: web.Request) -> web.Response:
        return json_response(execs.get(request.match_info["id"]).docker())

    r.add("POST", "/containers/{id}/exec", create)
    r.add("POST", "/exec/{id}/start", start)
    r.add("POST", "/exec/{id}/resize", resize)
    r.add("GET", "/exec/{id}/json", inspect)


async def _say(conn: Hijacked, text: str, framed: bool) -> None:
    """An exec's failure told in its stream, on stdout as dockerd writes it.

    Not at once: docker-py reads the 101's headers through a buffered reader and then reads the raw socket,
    so bytes that arrive with the headers are lost to it (dockerd's come later, after containerd's answer).
    """
    message = text.encode() + b"\r\n"
    await asyncio.sleep(_AFTER_UPGRADE)
    with contextlib.suppress(ConnectionError):
        await conn.write(frame(STDOUT, message) if framed else message)
