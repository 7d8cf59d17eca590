"""A container's files: docker cp (HEAD/GET/PUT archive), docker diff (changes), docker export (CLIENT-FLOWS §5.12).

The container-files service does the work; these handlers speak HTTP: the path stat
travels as base64 JSON in X-Docker-Container-Path-Stat (the CLI fails without it), and
tars stream through in both directions without being held in memory.
"""
from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from engine.api.app import Router
from engine.api.query import boolean
from engine.api.responses import json_response
from engine.backend import Backend
from engine.errors import InvalidArgument
from runtime import client as rt

log = logging.getLogger("engine.api.archive")

STAT_HEADER = "X-Docker-Container-Path-Stat"
TAR = "application/x-tar"


def _encode_stat(st: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(st, separators=(",", ":")).encode()).decode()


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidArgument("path is required")
    return path


async def _stream(request: web.Request, chunks: AsyncIterator[bytes],
                  headers: dict[str, str] | None = None) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": TAR, **(headers or {})})
    await resp.prepare(request)
    try:
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client hung up; leaving the runtime's stream stops the tar there too
    except rt.RuntimeError_ as e:
        # Too late for an error response: cutting the connection tells the client the tar is incomplete.
        log.warning("tar stream for %s cut short: %s", request.path, e.message)
        raise ConnectionResetError(e.message) from None
    return resp


def register(r: Router, b: Backend) -> None:
    files = b.files

    async def stat(request: web.Request) -> web.Response:
        st = await files.stat(request.match_info["id"], _path(request))
        return web.Response(status=200, headers={STAT_HEADER: _encode_stat(st), "Content-Type": "application/json"})

    async def get(request: web.Request) -> web.StreamResponse:
        async with files.archive(request.match_info["id"], _path(request)) as (st, chunks):
            return await _stream(request, chunks, {STAT_HEADER: _encode_stat(st)})

    async def put(request: web.Request) -> web.Response:
        q = request.query

        async def body() -> AsyncIterator[bytes]:
            async for chunk in request.content.iter_chunked(1 << 16):
                yield chunk

        await files.put_archive(request.match_info["id"], _path(request), body(),
                                no_overwrite_dir_non_dir=boolean(q, "noOverwriteDirNonDir"),
                                copy_uid_gid=boolean(q, "copyUIDGID"))
        return web.Response(status=200)

    async def changes(request: web.Request) -> web.Response:
        # dockerd's answer for no changes is Go's nil list: null.
        return json_response(await files.changes(request.match_info["id"]) or None)

    async def export(request: web.Request) -> web.StreamResponse:
        async with files.export(request.match_info["id"]) as chunks:
            return await _stream(request, chunks)

    r.add("HEAD", "/containers/{id}/archive", stat)
    r.add("GET", "/containers/{id}/archive", get)
    r.add("PUT", "/containers/{id}/archive", put)
    r.add("GET", "/containers/{id}/changes", changes)
    r.add("GET", "/containers/{id}/export", export)
