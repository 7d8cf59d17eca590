"""Resolving references to descriptors and fetching manifests and blobs."""
from __future__ import annotations

import hashlib
import json
import logging
from types import TracebackType
from typing import Any

import aiohttp

from runtime.errors import DataLoss, InvalidArgument, NotFound, RuntimeError_, Unavailable
from runtime.oci import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST,
    MT_OCI_INDEX,
    MT_OCI_MANIFEST,
    Descriptor,
    validate_digest,
)
from runtime.reference import Reference
from runtime.remotes.auth import Credentials
from runtime.remotes.blobs import BlobStream, open_blob
from runtime.remotes.hosts import Endpoint, RegistryHostsConfig
from runtime.remotes.tags import list_tags
from runtime.remotes.transport import RegistryTransport, RetryPolicy, read_capped

log = logging.getLogger(__name__)

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
KNOWN_MANIFEST_TYPES = INDEX_TYPES | MANIFEST_TYPES
MANIFEST_ACCEPT = ", ".join([MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIFEST])
_SCHEMA1_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
})
# Some registries label manifests generically; the digest check still applies.
_GENERIC_TYPES = frozenset({"", "application/json", "application/octet-stream", "text/plain"})
_SCHEMA1_MESSAGE = (
    "Docker Image Format v1 and Docker Image manifest version 2, schema 1 are no longer supported"
)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_content_type(media_type: str, subject: str, host: str) -> None:
    if media_type in _SCHEMA1_TYPES:
        raise InvalidArgument(f"{subject} from {host}: {_SCHEMA1_MESSAGE}")
    if media_type not in KNOWN_MANIFEST_TYPES and media_type not in _GENERIC_TYPES:
        raise InvalidArgument(f"{host} returned {media_type!r} instead of a manifest for {subject}")


def json_object(body: bytes, subject: str) -> dict[str, Any]:
    """A registry document that must be a JSON object, or InvalidArgument naming `subject`."""
    try:
        doc = json.loads(body)
    except ValueError:
        raise InvalidArgument(f"{subject} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{subject} is not a JSON object")
    return doc


def sniff_media_type(body: bytes, subject: str) -> str:
    """The manifest media type from the document itself, for generic Content-Types."""
    doc = json_object(body, subject)
    declared = doc.get("mediaType")
    if declared in KNOWN_MANIFEST_TYPES:
        return str(declared)
    if doc.get("schemaVersion") == 1:
        raise InvalidArgument(f"{subject}: {_SCHEMA1_MESSAGE}")
    # OCI lets mediaType be omitted; the shape tells index from manifest.
    if isinstance(doc.get("manifests"), list):
        return MT_OCI_INDEX
    if isinstance(doc.get("config"), dict) and isinstance(doc.get("layers"), list):
        return MT_OCI_MANIFEST
    raise InvalidArgument(f"{subject} is neither an image manifest nor an index")


class Resolver:
    """Registry API v2 client for pulls: resolve, fetch manifests, stream blobs.

    Uses one aiohttp session for everything (its own unless one is given) and
    caches auth tokens across calls, so keep one Resolver for the daemon's
    life and close() it at shutdown.
    """

    def __init__(
        self,
        config: RegistryHostsConfig,
        session: aiohttp.ClientSession | None = None,
        *,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 30.0,
        read_timeout: float = 60.0,
        max_redirects: int = 10,
    ) -> None:
        self.config = config
        self._transport = RegistryTransport(
            config, session, retry=retry, connect_timeout=connect_timeout,
            read_timeout=read_timeout, max_redirects=max_redirects,
        )

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def endpoints(self, ref: Reference) -> list[Endpoint]:
        """Where `ref` can be pulled from: mirrors first, the origin last."""
        return self.config.endpoints_for(ref.domain)

    async def resolve(
        self, ref: Reference, credentials: Credentials | None = None
    ) -> tuple[Endpoint, Descriptor]:
        """Find `ref`'s top-level manifest: the endpoint that has it and its descriptor.

        Mirrors are tried first; any failure there moves on to the next
        endpoint, and the origin's error is the one raised, unless the origin
        cannot be reached at all: then a mirror's definite "not found" is the
        answer (the name does not exist as far as anyone reachable knows).
        """
        *mirrors, origin = self.endpoints(ref)
        missing: NotFound | None = None
        for mirror in mirrors:
            try:
                return mirror, await self._resolve_at(mirror, ref, credentials)
            except RuntimeError_ as e:
                log.warning("mirror %s failed to resolve %s (%s); trying the next endpoint",
                            mirror.base_url, ref, e.message)
                if isinstance(e, NotFound):
                    missing = missing or e
        try:
            return origin, await self._resolve_at(origin, ref, credentials)
        except Unavailable as e:
            if missing is None:
                raise
            raise NotFound(f"{missing.message} (and {origin.host} is out of reach: {e.message})") from None

    async def tags(self, ref: Reference, credentials: Credentials | None = None) -> list[str]:
        """Every tag of `ref`'s repository, from the first endpoint that answers (mirrors first); as in resolve,
        a mirror's definite "not found" stands when the origin cannot be reached."""
        *mirrors, origin = self.endpoints(ref)
        missing: NotFound | None = None
        for mirror in mirrors:
            try:
                return await list_tags(self._transport, mirror, ref, credentials)
            except RuntimeError_ as e:
                log.warning("mirror %s failed to list the tags of %s (%s); trying the next endpoint",
                            mirror.base_url, ref.name, e.message)
                if isinstance(e, NotFound):
                    missing = missing or e
        try:
            return await list_tags(self._transport, origin, ref, credentials)
        except Unavailable as e:
            if missing is None:
                raise
            raise NotFound(f"{missing.message} (and {origin.host} is out of reach: {e.message})") from None

    async def _resolve_at(
        self, endpoint: Endpoint, ref: Reference, credentials: Credentials | None
    ) -> Descriptor:
        try:
            return await self._describe_at(endpoint, ref, credentials)
        except NotFound:
            # A HEAD's 404 has no body: a GET brings the registry's own words (a repository it does not know, or
            # a tag), which are what dockerd, whose pulls GET, passes on.
            await self._get_manifest(endpoint, ref, ref.locator, credentials)
            raise

    async def _describe_at(
        self, endpoint: Endpoint, ref: Reference, credentials: Credentials | None
    ) -> Descriptor:
        subject = f"manifest {ref}"
        api_path = f"{ref.repository_path}/manifests/{ref.locator}"
        try:
            resp = await self._transport.send(
                "HEAD", endpoint, api_path, repository=ref.repository_path, subject=subject,
                credentials=credentials, headers={"Accept": MANIFEST_ACCEPT}, not_found="manifest unknown",
            )
        except InvalidArgument as e:
            # Some registries refuse HEAD on manifests (400/405); GET always works.
            log.debug("HEAD %s on %s refused (%s); using GET", subject, endpoint.host, e.message)
        else:
            resp.release()
            media_type = _media_type(resp.headers.get("Content-Type"))
            _check_content_type(media_type, subject, endpoint.host)
            header_digest = resp.headers.get("Docker-Content-Digest")
            if ref.digest is not None and header_digest and header_digest != ref.digest:
                raise DataLoss(f"{endpoint.host} reports digest {header_digest} for {subject}")
            digest = ref.digest or header_digest
            size = resp.content_length
            if digest and media_type in KNOWN_MANIFEST_TYPES and size is not None:
                return Descriptor(mediaType=media_type, digest=validate_digest(digest), size=size)

        # HEAD did not tell us everything: fetch the manifest and describe it ourselves.
        body, media_type, header_digest = await self._get_manifest(endpoint, ref, ref.locator, credentials)
        digest = _sha256(body)
        if ref.digest is not None and digest != ref.digest:
            raise DataLoss(f"{subject} from {endpoint.host} has digest {digest}")
        if header_digest and header_digest != digest:
            raise DataLoss(
                f"{endpoint.host} reports digest {header_digest} for {subject}, but its content hashes to {digest}"
            )
        if media_type not in KNOWN_MANIFEST_TYPES:
            media_type = sniff_media_type(body, subject)
        return Descriptor(mediaType=media_type, digest=digest, size=len(body))

    async def _get_manifest(
        self, endpoint: Endpoint, ref: Reference, locator: str, credentials: Credentials | None
    ) -> tuple[bytes, str, str | None]:
        """GET a manifest body, bounded in size: (body, media type, Docker-Content-Digest)."""
        subject = f"manifest {ref.name}{'@' if locator.startswith('sha256:') else ':'}{locator}"
        resp = await self._transport.send(
            "GET", endpoint, f"{ref.repository_path}/manifests/{locator}",
            repository=ref.repository_path, subject=subject, credentials=credentials,
            headers={"Accept": MANIFEST_ACCEPT}, not_found="manifest unknown",
        )
        try:
            media_type = _media_type(resp.headers.get("Content-Type"))
            _check_content_type(media_type, subject, endpoint.host)
            too_large = f"manifest too large: {subject} from {endpoint.host} exceeds {MAX_MANIFEST_SIZE} bytes"
            if resp.content_length is not None and resp.content_length > MAX_MANIFEST_SIZE:
                raise InvalidArgument(too_large)
            body, truncated = await read_capped(resp, MAX_MANIFEST_SIZE)
            if truncated:
                raise InvalidArgument(too_large)
            return body, media_type, resp.headers.get("Docker-Content-Digest")
        finally:
            resp.release()

    async def fetch_manifest(
        self, endpoint: Endpoint, ref: Reference, digest: str, credentials: Credentials | None = None
    ) -> bytes:
        """The manifest or index `digest` of `ref`'s repository, verified against the digest."""
        validate_digest(digest)
        body, _, _ = await self._get_manifest(endpoint, ref, digest, credentials)
        actual = _sha256(body)
        if actual != digest:
            raise DataLoss(f"manifest {ref.name}@{digest} from {endpoint.host} has digest {actual}")
        return body

    async def fetch_blob(
        self,
        endpoint: Endpoint,
        ref: Reference,
        desc: Descriptor,
        offset: int = 0,
        credentials: Credentials | None = None,
    ) -> BlobStream:
        """Start streaming blob `desc`; see BlobStream for resuming via `offset`."""
        return await open_blob(self._transport, endpoint, ref, desc, offset, credentials)
