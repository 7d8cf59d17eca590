"""/containers: create, inspect, list, lifecycle, wait, logs (CLIENT-FLOWS §5.1, §5.4-5.11)."""
from __future__ import annotations

import contextlib
import json
import logging
import re
from typing import Any

from aiohttp import web

from engine.api import versions
from engine.api.app import Router
from engine.api.hijack import MULTIPLEXED_STREAM, RAW_STREAM
from engine.api.query import boolean, filters, integer
from engine.api.resize import terminal_size
from engine.api.responses import empty, json_response, read_json
from engine.api.streams import STDERR, STDOUT, disconnected, frame, open_stream, until
from engine.backend import Backend
from engine.containers import removed
from engine.containers.options import parse
from engine.containers.waits import WaitCondition
from engine.containers.state import rfc3339
from engine.errors import Conflict, EngineError, InvalidArgument, NotFound, NotImplemented_, prefixed
from engine.logs.reader import Query
from engine.logs.retention import Removed, inspectable
from engine.logs.service import LoggedContainer

log = logging.getLogger("engine.api.containers")


def register(r: Router, b: Backend) -> None:
    svc = b.containers

    async def create(request: web.Request) -> web.Response:
        req = parse(await read_json(request), versions.of(request))
        c, warnings = await b.creator.create(request.query.get("name") or None, req,
                                             request.query.get("platform") or None)
        return json_response({"Id": c.id, "Warnings": warnings}, 201)

    async def retained(ref: str, missing: NotFound) -> Removed:
        """A removed container whose logs are still kept (engine/logs/retention.py), else the 404."""
        found = await b.logs.removed(ref)
        if found is None:
            raise missing
        return found

    async def inspect(request: web.Request) -> web.Response:
        try:
            doc = await b.describer.inspect(request.match_info["id"], boolean(request.query, "size"))
        except NotFound as e:
            ref = request.match_info["id"]
            gone = await retained(ref, e)
            if not inspectable(gone, ref, b.config.removed_logs_inspect):
                raise
            doc = removed.inspect(gone)
        return json_response(versions.container_inspect(doc, versions.of(request)))

    async def list_(request: web.Request) -> web.Response:
        q = request.query
        found = await b.describer.list(filters(q), boolean(q, "all"), integer(q, "limit") or -1, boolean(q, "size"))
        return json_response([versions.container_summary(doc, versions.of(request)) for doc in found])

    async def start(request: web.Request) -> web.Response:
        # dockerd's rule: a body over 7 bytes ({"a":1} and up), or one of unknown length, is a HostConfig.
        if len(await request.read()) > 7 or (request.content_length is None and request.body_exists):
            if versions.of(request) >= (1, 24):
                raise InvalidArgument("starting container with non-empty request body was deprecated since API v1.22 "
                                      "and removed in v1.24")
            raise InvalidArgument("a HostConfig given at start (API before 1.24) is not supported: give it at create")
        if request.query.get("checkpoint") or request.query.get("checkpoint-dir"):
            raise InvalidArgument("checkpoint is only supported in experimental mode" if not b.config.experimental
                                  else "checkpoints are not supported by this engine")
        await b.run.start(request.match_info["id"])
        return empty()

    async def stop(request: web.Request) -> web.Response:
        await b.run.stop(request.match_info["id"], integer(request.query, "t"), _stop_signal(request))
        return empty()

    async def restart(request: web.Request) -> web.Response:
        ref = request.match_info["id"]
        b.containers.get(ref)  # an unknown container is told plainly; what fails after, with dockerd's words first
        try:
            await b.run.restart(ref, integer(request.query, "t"), _stop_signal(request))
        except EngineError as e:
            raise prefixed(e, f"Cannot restart container {ref}: ") from None
        return empty()

    async def kill(request: web.Request) -> web.Response:
        ref = request.match_info["id"]
        try:
            await b.run.kill(ref, request.query.get("signal") or None)
        except (NotFound, Conflict) as e:
            raise prefixed(e, f"Cannot kill container: {ref}: ") from None
        return empty()

    async def pause(request: web.Request) -> web.Response:
        await b.manager.pause(request.match_info["id"])
        return empty()

    async def unpause(request: web.Request) -> web.Response:
        await b.manager.unpause(request.match_info["id"])
        return empty()

    async def rename(request: web.Request) -> web.Response:
        await b.manager.rename(request.match_info["id"], request.query.get("name", ""))
        return empty()

    async def remove(request: web.Request) -> web.Response:
        if boolean(request.query, "link"):
            # The path names a link, `parent/alias`, not a container.
            await b.manager.remove_link(request.match_info["id"])
            return empty()
        if "/" in request.match_info["id"]:
            raise NotFound(f"No such container: {request.match_info['id']}")
        await b.run.remove(request.match_info["id"], boolean(request.query, "force"), boolean(request.query, "v"))
        return empty()

    async def top(request: web.Request) -> web.Response:
        ps_args = request.query.get("ps_args", "")
        if "\0" in ps_args:
            raise InvalidArgument("invalid ps_args: NUL byte")
        return json_response(await b.manager.top(request.match_info["id"], ps_args))

    async def resize(request: web.Request) -> web.Response:
        height, width = terminal_size(request.query)
        await b.manager.resize(request.match_info["id"], height, width)
        return web.Response(status=200)

    async def wait(request: web.Request) -> web.StreamResponse:
        # Before 1.30 there were no conditions: dockerd reads none.
        given = request.query.get("condition") if versions.of(request) >= (1, 30) else None
        try:
            condition = WaitCondition(given or WaitCondition.NOT_RUNNING)
        except ValueError:
            if versions.of(request) >= (1, 42):
                raise InvalidArgument(f"invalid condition: {request.query['condition']!r}") from None
            condition = WaitCondition.NOT_RUNNING  # dockerd 20.10 waits for the default on a word it does not know
        exit_code = b.run.wait(request.match_info["id"], condition)
        # Headers now: `docker run` starts the container only once it has seen them.
        resp = await open_stream(request)
        code = await until(exit_code, disconnected(request))
        if code is not None:
            # dockerd's Error: why the last start failed (the state's error), null after a run.
            c = svc.find(request.match_info["id"])
            error = {"Message": c.state.error} if c is not None and c.state.error else None
            with contextlib.suppress(ConnectionError):
                await resp.write(json.dumps({"Error": error, "StatusCode": code}, separators=(",", ":")).encode()
                                 + b"\n")
        return resp

    async def logs(request: web.Request) -> web.StreamResponse:
        q = request.query
        ref = request.match_info["id"]
        try:
            c: LoggedContainer = svc.get(ref)
            gone = None
        except NotFound as e:
            c = gone = await retained(ref, e)
        wanted = {"stdout": boolean(q, "stdout"), "stderr": boolean(q, "stderr")}
        if not any(wanted.values()):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        tail = q.get("tail", "all")
        # dockerd shows every line for a tail it cannot read as a number.
        lines = int(tail) if tail.lstrip("-").isdigit() else None
        since, until_ = _unix_ns(q, "since"), _unix_ns(q, "until")
        timestamps, tty = boolean(q, "timestamps"), bool(c.config.get("Tty"))
        details = b.logs.details(c) if boolean(q, "details") else b""
        if not b.logs.readable(c):
            raise NotImplemented_("configured logging driver does not support reading")
        query = Query(since=since, until=until_, tail=None if lines is None or lines < 0 else lines)
        if gone is not None:
            records = b.logs.read_removed(gone, query)  # all there will ever be: following ends at once
        else:
            live = svc.get(ref)
            run_over = b.run.run_over(live) if boolean(q, "follow") else None
            records = b.logs.read(live, query, follow=run_over is not None, stop=run_over)
        # dockerd's media types: multiplexed (framed) output says so from API 1.42 on.
        multiplexed = not tty and versions.of(request) >= (1, 42)
        resp = await open_stream(request, content_type=MULTIPLEXED_STREAM if multiplexed else RAW_STREAM)

        async def pump() -> None:
            async for batch in records:
                out = []
                for rec in batch:
                    if wanted[rec.stream]:
                        data = details + rec.data
                        if timestamps:
                            data = _timestamp(rec.ts) + b" " + data
                        out.append(data if tty else frame(STDOUT if rec.stream == "stdout" else STDERR, data))
                if out:
                    await resp.write(b"".join(out))

        with contextlib.suppress(ConnectionError):
            await until(pump(), disconnected(request))
        return resp

    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", list_)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/resize", resize)
    r.add("POST", "/containers/{id}/wait", wait)
    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/logs", logs)
    r.add("DELETE", "/containers/{id:.+}", remove)


def _unix_ns(q: Any, name: str) -> int | None:
    """Unix seconds with an optional .nnnnnnnnn fraction (what the CLI sends); 0 means unset."""
    raw = q.get(name, "")
    if not raw:
        return None
    m = re.fullmatch(r"(\d+)(?:\.(\d{1,9}))?", raw)
    if m is None:
        raise InvalidArgument(f"invalid value for {name}: {raw!r}")
    ns = int(m.group(1)) * 1_000_000_000 + int((m.group(2) or "").ljust(9, "0") or 0)
    return ns or None


def _timestamp(ns: int) -> bytes:
    """RFC 3339 with a fixed nine-digit fraction, as Docker prefixes log lines."""
    base = rfc3339(ns // 1_000_000_000).removesuffix("Z")
    return f"{base}.{ns % 1_000_000_000:09d}Z".encode()


def _stop_signal(request: web.Request) -> str | None:
    """The `signal` of a stop or restart came with API 1.42: dockerd reads it from no older client."""
    if versions.of(request) < (1, 42):
        return None
    return request.query.get("signal") or None
