"""A container's files: stat, tar out and in (`docker cp`), changes (`docker diff`), export."""
from __future__ import annotations

import asyncio
import base64
import tempfile
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import BinaryIO

from aiohttp import web
from pydantic import BaseModel, Field

from runtime.api.routing import Router, Stream
from runtime.api.streams import ClientDisconnect, thread_body, upload
from runtime.errors import InvalidArgument
from runtime.rootfs import archive, extract
from runtime.rootfs.changes import Change
from runtime.rootfs.lstat import PathEntry, lstat_paths
from runtime.rootfs.view import Rootfs
from runtime.services import Services
from runtime.wire import PATH_STAT_HEADER

router = Router("/containers", tags=("containers",))

TAR = "application/x-tar"
_SPOOL_BATCH = 1 << 20


def _tar_response(s: Services, container_id: str, work: Callable[[Rootfs, BinaryIO], None],
                  headers: dict[str, str] | None = None) -> Stream:
    async def body() -> AsyncGenerator[bytes, None]:
        # Taken here, not before the response: a body that never starts must hold nothing.
        rootfs = await s.rootfs.acquire(container_id)
        async with aclosing(thread_body(lambda out: work(rootfs, out), lambda: s.rootfs.release(rootfs))) as chunks:
            async for chunk in chunks:
                yield chunk

    return Stream(body(), TAR, headers)


@router.get("/{container_id}/archive/stat")
async def stat_path(container_id: str, path: str, s: Services) -> archive.PathStat:
    async with s.rootfs.open(container_id) as rootfs:
        return await asyncio.to_thread(archive.stat_path, rootfs, path)


class LstatRequest(BaseModel):
    paths: list[str] = Field(max_length=1 << 16)


@router.post("/{container_id}/archive/lstat")
async def lstat(container_id: str, body: LstatRequest, s: Services) -> list[PathEntry]:
    """Kind, mode and owner of each path, symlinks not followed at the last component (the builder's COPY)."""
    async with s.rootfs.open(container_id) as rootfs:
        return await asyncio.to_thread(lstat_paths, rootfs, body.paths)


@router.get("/{container_id}/archive")
async def get_archive(container_id: str, path: str, s: Services) -> Stream:
    """A tar of `path`; its stat (base64 JSON, as Docker's X-Docker-Container-Path-Stat) in a header."""
    async with s.rootfs.open(container_id) as rootfs:
        st = await asyncio.to_thread(archive.stat_path, rootfs, path)
    header = base64.b64encode(st.model_dump_json().encode()).decode()
    return _tar_response(s, container_id, lambda rootfs, out: archive.write_path(rootfs, path, out),
                         {PATH_STAT_HEADER: header})


@router.put("/{container_id}/archive")
async def put_archive(container_id: str, path: str, request: web.Request, s: Services,
                      no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
    """Unpack the tar in the body (plain or compressed) into directory `path`.

    The body is spooled to disk first, so the whole tar is checked before anything is written.
    """
    opts = extract.ExtractOptions(no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, copy_uid_gid=copy_uid_gid)
    async with s.rootfs.open(container_id) as rootfs:
        # A missing or read-only destination fails before the upload is read.
        await asyncio.to_thread(extract.destination, rootfs, path)
        with tempfile.TemporaryFile(dir=s.rootfs.spool_dir) as spool:
            batch = bytearray()
            try:
                async for chunk in upload(request):
                    batch += chunk
                    if len(batch) >= _SPOOL_BATCH:
                        await asyncio.to_thread(spool.write, bytes(batch))
                        batch.clear()
            except ClientDisconnect:
                raise InvalidArgument("the upload ended before the tar did") from None
            await asyncio.to_thread(spool.write, bytes(batch))
            spool.flush()
            await asyncio.to_thread(extract.extract, rootfs, path, spool, opts)


@router.get("/{container_id}/changes")
async def changes(container_id: str, s: Services) -> list[Change]:
    return await s.rootfs.changes(container_id)


@router.get("/{container_id}/export")
async def export(container_id: str, s: Services) -> Stream:
    await s.containers.store.get(container_id)
    return _tar_response(s, container_id, archive.write_export)
