"""Kind, mode and owner of paths in a container's filesystem (the runtime's `POST /containers/{id}/archive/lstat`).

Docker's path stat (`stat_path`) answers one path without its owner; the builder, about to write a COPY's
tar as a layer itself, needs the owner and mode of every directory the tar passes through (a layer that
names a directory sets them) and whether anything on the way is a symlink, in one request.
"""
from __future__ import annotations

from typing import Literal, Protocol
from urllib.parse import quote

from runtime.client.records import _Record
from runtime.client.transport import Transport


class PathEntry(_Record):
    path: str
    kind: Literal["missing", "dir", "file", "symlink", "other"]
    mode: int = 0  # permission bits
    uid: int = 0
    gid: int = 0
    mtime: int = 0


class PathInfoAPI(Protocol):
    async def lstat_paths(self, container_id: str, paths: list[str],
                          namespace: str | None = None) -> list[PathEntry]: ...


class PathInfoClient(Transport):
    async def lstat_paths(self, container_id: str, paths: list[str],
                          namespace: str | None = None) -> list[PathEntry]:
        """One entry per path, in order; `missing` when nothing is there or a parent is not a directory."""
        return await self._records(PathEntry, "POST", f"/containers/{quote(container_id, safe='')}/archive/lstat",
                                   json_body={"paths": paths}, namespace=namespace)
