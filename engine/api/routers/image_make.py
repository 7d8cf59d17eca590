"""Images made on this host without a build: POST /commit (docker commit) and POST /images/create?fromSrc=
(docker import; the pull form of the same endpoint lives in the images router, which hands over here)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from yarl import URL

from engine.api import query
from engine.api.app import Router
from engine.api.streams import error_line, json_line
from engine.api.responses import json_response, read_json
from engine.backend import Backend
from engine.containers.options import commit_config
from engine.errors import EngineError, InvalidArgument
from engine.images import platforms
from engine.images.make_options import CommitOptions, ImportOptions
from runtime.client import RuntimeError_

_CHUNK = 1 << 16



def register(r: Router, b: Backend) -> None:
    async def commit(request: web.Request) -> web.Response:
        q = request.query
        c = b.containers.get(q.get("container", ""))
        config = commit_config(await read_json(request, optional=True))
        options = CommitOptions(repo=q.get("repo", ""), tag=q.get("tag", ""), author=q.get("author", ""),
                                comment=q.get("comment", ""), pause=query.boolean(q, "pause", True),
                                changes=tuple(q.getall("changes", [])), config=config)
        return json_response({"Id": await b.committer.get().commit(c, options)}, status=201)

    r.add("POST", "/commit", commit)


async def import_image(request: web.Request, b: Backend) -> web.StreamResponse:
    """docker import: the image ID as the stream's one status line, as dockerd answers it."""
    q = request.query
    source = q.get("fromSrc", "")
    wanted = platforms.parse(q["platform"]) if q.get("platform") else None
    options = ImportOptions(source=source, repo=q.get("repo", ""), tag=q.get("tag", ""),
                            message=q.get("message", ""), changes=tuple(q.getall("changes", [])),
                            platform=wanted.as_config() if wanted else None)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    if source == "-":
        data: AsyncIterator[bytes] = request.content.iter_chunked(_CHUNK)
        image_id = await b.importer.get().import_image(data, options)
        await response.prepare(request)
    else:
        url = source if "://" in source else f"http://{source}"
        if not url.startswith(("http://", "https://")):
            raise InvalidArgument(f"cannot import from {source}: only http and https URLs can be fetched")
        if not URL(url).host:  # `fromSrc=/etc/passwd`: a path, which dockerd too takes for a URL without a host
            raise InvalidArgument(f'Get "{url}": http: no Host in request URL')
        await response.prepare(request)
        await response.write(json_line({"status": f"Downloading from {url}"}))
        try:
            image_id = await _import_url(b, url, options)
        except (EngineError, RuntimeError_, aiohttp.ClientError) as e:
            message = getattr(e, "message", None) or f'Get "{url}": {e}'
            await response.write(error_line(message))
            await response.write_eof()
            return response
    await response.write(json_line({"status": image_id}))
    await response.write_eof()
    return response


async def _import_url(b: Backend, url: str, options: ImportOptions) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        if resp.status != 200:
            raise InvalidArgument(f"cannot import from {url}: the server answered {resp.status} {resp.reason}")
        return await b.importer.get().import_image(resp.content.iter_chunked(_CHUNK), options)
