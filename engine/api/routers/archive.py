"""A container's files: docker cp (HEAD/GET/PUT archive), docker diff (changes), docker export (CLIENT-FLOWS §5.12).

The runtime does the work on the container's rootfs; these handlers speak Docker:
the path stat travels as base64 JSON in X-Docker-Container-Path-Stat (the CLI fails
without it), a missing path is Docker's "Could not find the file" 404, and tars
stream through in both directions without being held in memory.
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
from engine.errors import InvalidArgument, NotFound
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


def _missing(path: str, ref: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {ref}")


async def _stream(request: web.Request, chunks: AsyncIterator[bytes],
                  headers: dict[str, str] | None = None) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": TAR, **(headers or {})})
    resp.enable_chunked_encoding()
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
    svc = b.containers

    async def stat(request: web.Request) -> web.Response:
        ref, path = request.match_info["id"], _path(request)
        c = svc.get(ref)
        try:
            st = await b.runtime.stat_path(c.id, path)
        except rt.NotFound:
            raise _missing(path, ref) from None
        return web.Response(status=200, headers={STAT_HEADER: _encode_stat(st), "Content-Type": "application/json"})

    async def get(request: web.Request) -> web.StreamResponse:
        ref, path = request.match_info["id"], _path(request)
        c = svc.get(ref)
        try:
            async with b.runtime.archive(c.id, path) as (st, chunks):
                b.events.container(c, "archive-path")
                return await _stream(request, chunks, {STAT_HEADER: _encode_stat(st)})
        except rt.NotFound:  # only from the start: _stream turns later errors into a cut connection
            raise _missing(path, ref) from None

    async def put(request: web.Request) -> web.Response:
        ref, path = request.match_info["id"], _path(request)
        c = svc.get(ref)
        q = request.query

        async def body() -> AsyncIterator[bytes]:
            async for chunk in request.content.iter_chunked(1 << 16):
                yield chunk

        try:
            # copyUIDGID gives the files to the container's user; without a user, Docker keeps the tar's ids.
            await b.runtime.put_archive(c.id, path, body(),
                                        no_overwrite_dir_non_dir=boolean(q, "noOverwriteDirNonDir"),
                                        copy_uid_gid=boolean(q, "copyUIDGID") and bool(c.config.get("User")))
        except rt.NotFound:
            raise _missing(path, ref) from None
        b.events.container(c, "extract-to-dir")
        return web.Response(status=200)

    async def changes(request: web.Request) -> web.Response:
        c = svc.get(request.match_info["id"])
        found = await b.runtime.container_changes(c.id)
        return json_response([{"Path": ch["path"], "Kind": ch["kind"]} for ch in found])

    async def export(request: web.Request) -> web.StreamResponse:
        c = svc.get(request.match_info["id"])
        async with b.runtime.export(c.id) as chunks:
            b.events.container(c, "export")
            return await _stream(request, chunks)

    r.add("HEAD", "/containers/{id}/archive", stat)
    r.add("GET", "/containers/{id}/archive", get)
    r.add("PUT", "/containers/{id}/archive", put)
    r.add("GET", "/containers/{id}/changes", changes)
    r.add("GET", "/containers/{id}/export", export)
