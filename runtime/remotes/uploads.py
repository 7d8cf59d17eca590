"""Registry API v2 writes: blob existence, cross-repository mounts, blob uploads and manifest PUTs.

A blob upload is a session the registry opens (`POST /v2/<name>/blobs/uploads/`, 202 with a Location); it is
either finished in one `PUT <location>?digest=` carrying the whole blob (monolithic), or fed with `PATCH`es
of consecutive ranges (`Content-Range: start-end`, each answered with the next Location) and closed by an
empty `PUT ?digest=`. `?mount=<digest>&from=<repo>` asks the registry to link a blob it already holds in
another repository instead: 201 means done, 202 means it declined and opened an ordinary upload instead.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

from yarl import URL

from runtime.errors import DataLoss, NotFound
from runtime.oci import Descriptor
from runtime.reference import Reference
from runtime.remotes.auth import Credentials
from runtime.remotes.hosts import Endpoint
from runtime.remotes.transport import RegistryTransport


class Uploads:
    """Writes to one repository at one registry, with push access."""

    def __init__(self, transport: RegistryTransport, endpoint: Endpoint, ref: Reference,
                 credentials: Credentials | None) -> None:
        self._transport = transport
        self.endpoint = endpoint
        self.ref = ref
        self._credentials = credentials
        self.repository = ref.repository_path
        self._scope = f"repository:{self.repository}:pull,push"

    async def _send(self, method: str, target: str, subject: str, *, scope: str | None = None,
                    headers: dict[str, str] | None = None, data: bytes | None = None,
                    not_found: str = "not found") -> tuple[int, dict[str, str]]:
        resp = await self._transport.send(method, self.endpoint, target, repository=self.repository,
                                          subject=subject, credentials=self._credentials, headers=headers,
                                          scope=scope or self._scope, data=data, not_found=not_found)
        resp.release()
        return resp.status, {k: v for k, v in resp.headers.items()}

    async def has_blob(self, digest: str) -> bool:
        try:
            await self._send("HEAD", f"{self.repository}/blobs/{digest}", f"blob {digest}", not_found="blob unknown")
        except NotFound:
            return False
        return True

    async def start(self, digest: str) -> str:
        """An upload's Location."""
        _, headers = await self._send("POST", f"{self.repository}/blobs/uploads/", f"upload of blob {digest}",
                                      data=b"")
        return self._location(headers, f"upload of blob {digest}")

    async def mount(self, digest: str, source: str) -> str | None:
        """None when the registry mounted the blob from repository `source`; else the Location of the
        upload it opened instead."""
        path = f"{self.repository}/blobs/uploads/?mount={quote(digest)}&from={quote(source, safe='/')}"
        status, headers = await self._send("POST", path, f"upload of blob {digest}",
                                           scope=f"{self._scope} repository:{source}:pull", data=b"")
        if status == 201:
            return None
        return self._location(headers, f"upload of blob {digest}")

    def _location(self, headers: dict[str, str], subject: str) -> str:
        location = headers.get("Location")
        if not location:
            raise DataLoss(f"{self.endpoint.host} opened the {subject} without a Location")
        return str(URL(self.endpoint.url("")).join(URL(location, encoded=True)))

    async def put_whole(self, location: str, desc: Descriptor, data: bytes) -> None:
        await self._send("PUT", _with_digest(location, desc.digest), f"blob {desc.digest}",
                         headers={"Content-Type": "application/octet-stream"}, data=data)

    async def put_chunks(self, location: str, desc: Descriptor, chunks: AsyncIterator[bytes],
                         sent: Callable[[int], None]) -> None:
        """PATCH the chunks in order (each range where the last ended), then close the upload."""
        offset = 0
        async for chunk in chunks:
            _, headers = await self._send(
                "PATCH", location, f"blob {desc.digest}", data=chunk,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            location = self._location(headers, f"upload of blob {desc.digest}")
            offset += len(chunk)
            sent(offset)
        await self._send("PUT", _with_digest(location, desc.digest), f"blob {desc.digest}", data=b"")

    async def put_manifest(self, locator: str, media_type: str, body: bytes) -> str:
        """PUT a manifest or index under a tag or its digest; the digest the registry stored it as."""
        _, headers = await self._send("PUT", f"{self.repository}/manifests/{locator}",
                                      f"manifest {self.ref.name}:{locator}", headers={"Content-Type": media_type},
                                      data=body)
        return headers.get("Docker-Content-Digest", "")


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + f"digest={quote(digest)}"
