"""What a reference names in its registry, read without pulling: the top-level descriptor and its platforms.

Docker's `GET /distribution/{name}/json` answers this (swarm, buildx and registry tools ask it before
they pull). An index or manifest list names its platforms in its entries; a single manifest only in its
config blob, which is fetched (small, bounded, verified) but, like the manifest, never stored.
"""
from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel

from runtime.errors import DataLoss, InvalidArgument
from runtime.oci import INDEX_TYPES, Descriptor
from runtime.remotes.resolver import json_object
from runtime.transfer.registry import RegistryRemote

MAX_CONFIG_SIZE = 4 * 1024 * 1024
# The fields of an OCI platform, as a config and an index entry both spell them.
_PLATFORM_FIELDS = ("architecture", "os", "os.version", "os.features", "variant")


class RemoteDescriptor(BaseModel):
    mediaType: str
    digest: str
    size: int


class RemoteDescription(BaseModel):
    descriptor: RemoteDescriptor
    # Each as the registry spelled it: architecture, os, and os.version, os.features, variant when given.
    platforms: list[dict[str, Any]]


def _platform(doc: Any) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    platform = {k: doc[k] for k in _PLATFORM_FIELDS if doc.get(k) not in (None, "", [])}
    return platform if platform.get("os") or platform.get("architecture") else None



async def _config(remote: RegistryRemote, manifest: dict[str, Any]) -> dict[str, Any] | None:
    raw = manifest.get("config")
    if not isinstance(raw, dict):
        return None
    desc = Descriptor.model_validate(raw)
    subject = f"config {desc.digest} of {remote.name}"
    if desc.size > MAX_CONFIG_SIZE:
        raise InvalidArgument(f"{subject} is larger than {MAX_CONFIG_SIZE} bytes")
    body = bytearray()
    async with await remote.open_blob(desc, 0) as stream:
        async for chunk in stream:
            body += chunk
            if len(body) > desc.size:
                raise DataLoss(f"{subject} is longer than its descriptor's {desc.size} bytes")
    if "sha256:" + hashlib.sha256(body).hexdigest() != desc.digest:
        raise DataLoss(f"{subject} does not match its digest")
    return json_object(bytes(body), subject)


async def describe(remote: RegistryRemote) -> RemoteDescription:
    desc = await remote.resolve()
    manifest = json_object(await remote.fetch_manifest(desc), f"manifest {remote.name}")
    platforms: list[dict[str, Any]] = []
    if desc.mediaType in INDEX_TYPES:
        for entry in manifest.get("manifests") or []:
            if isinstance(entry, dict) and (p := _platform(entry.get("platform"))) is not None:
                platforms.append(p)
    elif (p := _platform(await _config(remote, manifest))) is not None:
        platforms.append(p)
    return RemoteDescription(descriptor=RemoteDescriptor(mediaType=desc.mediaType, digest=desc.digest,
                                                         size=desc.size), platforms=platforms)
