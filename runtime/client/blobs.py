"""Small blobs in one request (the runtime's `POST /content/blobs`): image configs and manifests.

An ingest costs three round trips (open, write, commit); a build step stores two small documents, so
one request each matters. Verified, leased and GC-referenced as an ingest's commit is.
"""
from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Protocol

from runtime.client.records import ContentInfo
from runtime.client.transport import Transport

MAX_BLOB = 4 << 20  # the runtime's limit for one request; bigger blobs go through an ingest


class BlobAPI(Protocol):
    async def put_blob(self, data: bytes, digest: str, *, refs: Sequence[tuple[str, str]] = (),
                       labels: dict[str, str] | None = None, namespace: str | None = None,
                       lease: str | None = None) -> ContentInfo: ...


class BlobClient(Transport):
    async def put_blob(self, data: bytes, digest: str, *, refs: Sequence[tuple[str, str]] = (),
                       labels: dict[str, str] | None = None, namespace: str | None = None,
                       lease: str | None = None) -> ContentInfo:
        """Store `data` (at most 4 MiB) as blob `digest`; refs are (kind, target) as for commit_ingest."""
        body = {"digest": digest, "data": base64.b64encode(data).decode(),
                "refs": [{"kind": k, "target": t} for k, t in refs], "labels": labels or {}}
        return await self._record(ContentInfo, "POST", "/content/blobs", json_body=body, namespace=namespace,
                                  lease=lease)
