"""From an image record to what running it needs: its config and its rootfs chainID."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from runtime.errors import FailedPrecondition, InvalidArgument
from runtime.metadata.content import ContentService
from runtime.oci import INDEX_TYPES, Descriptor
from runtime.remotes.platforms import select_manifest
from runtime.transfer.unpack import chain_ids


class ImageRootfs(BaseModel):
    config: dict[str, Any]
    chain_id: str | None  # None: an image without layers


async def resolve(content: ContentService, target: Descriptor) -> ImageRootfs:
    manifest_digest = target.digest
    if target.mediaType in INDEX_TYPES:
        manifest_digest = select_manifest(await content.read_document(target.digest, "index")).digest
    manifest = await content.read_document(manifest_digest, "manifest")
    config_desc = manifest.get("config") or {}
    if "digest" not in config_desc:
        raise InvalidArgument(f"manifest {manifest_digest} has no config")
    config = await content.read_document(config_desc["digest"], "image config")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(manifest.get("layers") or []):
        raise FailedPrecondition(f"image config of {manifest_digest} does not match its layers")
    chains = chain_ids(diff_ids)
    return ImageRootfs(config=config, chain_id=chains[-1] if chains else None)
