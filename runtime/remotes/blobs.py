"""Streaming blob downloads with resumable ranges."""
from __future__ import annotations

import re
from types import TracebackType

import aiohttp

from runtime.errors import DataLoss, InvalidArgument, Unavailable
from runtime.oci import Descriptor, validate_digest
from runtime.reference import Reference
from runtime.remotes.auth import Credentials
from runtime.remotes.hosts import Endpoint
from runtime.remotes.transport import RegistryTransport

_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


class BlobStream:
    """The bytes of one blob, from `start_offset` to the end, as an async iterator.

    `start_offset` is where the first chunk sits in the blob: the requested
    offset when the registry honoured the Range request (206), or 0 when it
    ignored it and sent the whole blob (200) — the caller must then discard
    what it already had and start over. `length` is how many bytes this
    stream will deliver, when the server said.

    Iterating to the end releases the connection; otherwise call aclose()
    (or use `async with`).
    """

    def __init__(
        self, response: aiohttp.ClientResponse | None, *, start_offset: int, length: int | None, subject: str
    ) -> None:
        self._response = response
        self.start_offset = start_offset
        self.length = length
        self._subject = subject
        self._received = 0

    def __aiter__(self) -> BlobStream:
        return self

    async def __anext__(self) -> bytes:
        if self._response is None:
            raise StopAsyncIteration
        try:
            chunk = await self._response.content.readany()
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            await self.aclose()
            position = self.start_offset + self._received
            raise Unavailable(
                f"download of {self._subject} interrupted at byte {position}: {e or type(e).__name__}"
            ) from e
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        self._received += len(chunk)
        return chunk

    async def aclose(self) -> None:
        if self._response is not None:
            self._response.release()
            self._response = None

    async def __aenter__(self) -> BlobStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def open_blob(
    transport: RegistryTransport,
    endpoint: Endpoint,
    ref: Reference,
    desc: Descriptor,
    offset: int = 0,
    credentials: Credentials | None = None,
) -> BlobStream:
    """Start downloading `desc` from `endpoint`, resuming at `offset` if the registry allows."""
    digest = validate_digest(desc.digest)
    if offset < 0 or offset > desc.size:
        raise InvalidArgument(f"offset {offset} outside blob {digest} of {desc.size} bytes")
    subject = f"blob {digest}"
    if offset == desc.size:
        # Nothing left; asking would only earn a 416 from a strict server.
        return BlobStream(None, start_offset=offset, length=0, subject=subject)

    # Blobs are already compressed; transfer encoding would also make Range
    # offsets refer to encoded bytes rather than the blob's.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    resp = await transport.send(
        "GET", endpoint, f"{ref.repository_path}/blobs/{digest}",
        repository=ref.repository_path, subject=subject, credentials=credentials,
        headers=headers, not_found="blob unknown",
    )
    try:
        if resp.status == 206 and offset:
            start = offset
            match = _CONTENT_RANGE_RE.match(resp.headers.get("Content-Range", ""))
            if match is not None and int(match.group(1)) != offset:
                raise DataLoss(
                    f"{endpoint.host} sent {subject} from byte {match.group(1)} when asked for byte {offset}"
                )
        elif resp.status == 200:
            start = 0
        else:
            raise Unavailable(f"unexpected HTTP {resp.status} from {endpoint.host} for {subject}")
        length = resp.content_length
        if resp.headers.get("Content-Encoding", "identity").lower() != "identity":
            # aiohttp decodes it, so the header length is not what we will yield.
            length = None
        if length is not None and length != desc.size - start:
            raise DataLoss(
                f"{endpoint.host} is sending {length} bytes of {subject} from byte {start}, "
                f"but the blob is {desc.size} bytes"
            )
    except BaseException:
        resp.release()
        raise
    return BlobStream(resp, start_offset=start, length=length, subject=subject)
