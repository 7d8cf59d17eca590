"""An image's manifests as API 1.47 lists them (`GET /images/json?manifests=1`, inspect's since 1.48), which
`docker image ls --tree` shows: one entry per manifest its names point at (an index's children, or the manifest
itself), whether its content is all here, the bytes it takes, and for an image manifest its platform, the
containers made from it and its unpacked size; for a BuildKit attestation, the manifest it is about."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from engine.images.model import LocalImage
from runtime.client import RuntimeError_

INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                         "application/vnd.docker.distribution.manifest.list.v2+json"})
_ATTESTATION = "attestation-manifest"

ReadJson = Callable[[str], Awaitable[dict[str, Any]]]


async def summaries(image: LocalImage, read_json: ReadJson, sizes: dict[str, int],
                    containers: list[str]) -> list[dict[str, Any]]:
    """`sizes`: the content store's blobs (digest -> bytes); `containers`: the IDs of those made from `image`."""
    entries: dict[str, dict[str, Any]] = {}
    for record in image.records:
        target = record.target
        children = [target]
        if target.get("mediaType") in INDEX_TYPES:
            children = (await _read(read_json, sizes, str(target["digest"])) or {}).get("manifests") or []
        for child in children:
            if isinstance(child, dict) and isinstance(child.get("digest"), str):
                entries.setdefault(child["digest"], child)
    return [await _summary(image, entry, read_json, sizes, containers) for entry in entries.values()]


async def _summary(image: LocalImage, entry: dict[str, Any], read_json: ReadJson, sizes: dict[str, int],
                   containers: list[str]) -> dict[str, Any]:
    digest = str(entry["digest"])
    manifest = await _read(read_json, sizes, digest)
    config = (manifest or {}).get("config") or {}
    blobs = [digest]
    if manifest is not None:
        blobs += [str(d.get("digest")) for d in [config, *(manifest.get("layers") or [])] if isinstance(d, dict)]
    content = sum(sizes.get(d, 0) for d in blobs)
    out: dict[str, Any] = {"ID": digest, "Descriptor": entry, "Available": manifest is not None and
                           all(d in sizes for d in blobs), "Size": {"Total": content, "Content": content}}
    annotations = entry.get("annotations") or {}
    if annotations.get("vnd.docker.reference.type") == _ATTESTATION:
        out["Kind"] = "attestation"
        out["AttestationData"] = {"For": annotations.get("vnd.docker.reference.digest", "")}
        return out
    if manifest is None and not entry.get("platform"):
        out["Kind"] = "unknown"
        return out
    mine = config.get("digest") == image.id
    unpacked = sum(image.unpacked or []) if mine else 0
    out["Kind"] = "image"
    out["ImageData"] = {"Platform": entry.get("platform") or await _platform(image, config, read_json, sizes),
                        "Containers": containers if mine else [], "Size": {"Unpacked": unpacked}}
    out["Size"]["Total"] = content + unpacked
    return out


async def _platform(image: LocalImage, config: dict[str, Any], read_json: ReadJson,
                    sizes: dict[str, int]) -> dict[str, str]:
    doc = image.config if config.get("digest") == image.id else await _read(read_json, sizes, str(config.get("digest")))
    doc = doc or {}
    platform = {"architecture": str(doc.get("architecture") or ""), "os": str(doc.get("os") or "")}
    if doc.get("variant"):
        platform["variant"] = str(doc["variant"])
    return platform


async def _read(read_json: ReadJson, sizes: dict[str, int], digest: str) -> dict[str, Any] | None:
    """A document of the content store, None when it is not here (another platform's) or no JSON."""
    if digest not in sizes:
        return None
    try:
        return await read_json(digest)
    except (ValueError, RuntimeError_):
        return None
