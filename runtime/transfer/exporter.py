"""Export: image records → one tar streamed out, an OCI image layout that dockerd's load also reads.

The layout is what Docker 25+ writes: `oci-layout`, `index.json` (one entry per name, annotated with
`io.containerd.image.name` and `org.opencontainers.image.ref.name`, as containerd and Docker do) and
`blobs/sha256/<hex>` for every manifest, config and layer, stored bytes as they are, so the
manifests keep their digests. The `docker` format adds the legacy `manifest.json` (Config, RepoTags,
Layers as paths into `blobs/`) and `repositories`: dockerd 20.10's load reads only manifest.json and
the files it names, and decompresses each layer itself, so gzip layers need no re-packing.

Nothing is assembled in memory or on disk: the plan (small JSON documents and blob paths) is made
first, so an unknown name is a plain 404, then a thread writes the tar into the response, layout files
first (see write()).
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Literal

from pydantic import BaseModel, Field

from runtime.errors import InvalidArgument, NotFound
from runtime.metadata.content import ContentService
from runtime.metadata.images import ImageStore
from runtime.oci import INDEX_TYPES, MT_OCI_INDEX, Descriptor
from runtime.reference import Reference, familiar
from runtime.reference import parse as parse_reference
from runtime.remotes.platforms import select_manifest
from runtime.transfer.importer import NAME_ANNOTATION, REF_NAME_ANNOTATION, platform_matches

# The blobs are read and sent in pieces of this size: fewer thread hops and sends than small writes.
CHUNK = 1 << 20


class ExportRequest(BaseModel):
    names: list[str] = Field(default_factory=list)  # image records, each exported under its own name
    unnamed: list[str] = Field(default_factory=list)  # image records exported without a name (save by ID)
    format: Literal["docker", "oci"] = "docker"
    platform: str | None = None  # os/arch[/variant] of the manifest taken from an index (default: this host's)
    # config digest -> its parent's: manifest.json gives an image's Parent when that image is in the archive too
    parents: dict[str, str] = Field(default_factory=dict)


@dataclass
class _Image:
    manifest: Descriptor
    config: Descriptor
    layers: list[Descriptor]
    diff_ids: list[str]
    names: list[str] = field(default_factory=list)


@dataclass
class ExportPlan:
    images: list[_Image]
    blobs: dict[str, int]  # digest -> size, in the order they go into the tar
    documents: list[tuple[str, bytes]]  # the layout files, written before the blobs


def _reference(name: str) -> Reference | None:
    try:
        return parse_reference(name)
    except InvalidArgument:
        return None


async def _manifest_for(content: ContentService, name: str, target: Descriptor, platform: str | None) -> Descriptor:
    parts = platform.split("/") if platform else []
    if platform and (len(parts) not in (2, 3) or not all(parts)):
        raise InvalidArgument(f"invalid platform {platform!r}: expected os/arch[/variant]")
    if target.mediaType not in INDEX_TYPES:
        if parts:
            manifest = await content.read_document(target.digest, "manifest")
            config = await content.read_document(str((manifest.get("config") or {}).get("digest")), "image config")
            if not platform_matches(config, platform):
                raise NotFound(f"image {name} was found but does not provide the specified platform ({platform})")
        return target
    index = await content.read_document(target.digest, "index")
    # A pull stores one platform's manifest of an index: choose among those this store has.
    present = [e for e in index.get("manifests") or []
               if isinstance(e, dict) and await content.has(str(e.get("digest")))]
    if parts:
        return select_manifest({"manifests": present}, parts[0], parts[1], parts[2] if len(parts) == 3 else None)
    return select_manifest({"manifests": present})


async def plan(content: ContentService, images: ImageStore, req: ExportRequest) -> ExportPlan:
    if not req.names and not req.unnamed:
        raise InvalidArgument("nothing to export: give at least one image name")
    by_manifest: dict[str, _Image] = {}
    for name, named in [(n, True) for n in req.names] + [(n, False) for n in req.unnamed]:
        record = await images.find(name)
        manifest_desc = await _manifest_for(content, name, record.target, req.platform)
        image = by_manifest.get(manifest_desc.digest)
        if image is None:
            manifest = await content.read_document(manifest_desc.digest, "manifest")
            config = Descriptor.model_validate(manifest.get("config"))
            layers = [Descriptor.model_validate(layer) for layer in manifest.get("layers") or []]
            config_doc = await content.read_document(config.digest, "image config")
            diff_ids = list((config_doc.get("rootfs") or {}).get("diff_ids") or [])
            image = by_manifest[manifest_desc.digest] = _Image(
                Descriptor(mediaType=manifest_desc.mediaType, digest=manifest_desc.digest, size=manifest_desc.size),
                config, layers, diff_ids)
        if named and record.name not in image.names:
            image.names.append(record.name)
    blobs: dict[str, int] = {}
    for image in by_manifest.values():
        for desc in [image.manifest, image.config, *image.layers]:
            await content.info(desc.digest)  # every blob is stored, or the export fails before it starts
            blobs.setdefault(desc.digest, desc.size)
    found = list(by_manifest.values())
    documents = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", _index(found))]
    if req.format == "docker":
        documents += [("manifest.json", _docker_manifest(found, req.parents)), ("repositories", _repositories(found))]
    return ExportPlan(found, blobs, documents)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _index(images: list[_Image]) -> bytes:
    entries: list[dict[str, Any]] = []
    for image in images:
        base = image.manifest.wire()
        if not image.names:
            entries.append(base)
        for name in image.names:
            notes = {NAME_ANNOTATION: name}
            ref = _reference(name)
            if ref is not None and ref.tag is not None:
                notes[REF_NAME_ANNOTATION] = ref.tag
            entries.append({**base, "annotations": notes})
    return _dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": entries})


def _tags(image: _Image) -> list[Reference]:
    refs = [_reference(n) for n in image.names]
    return [r for r in refs if r is not None and r.tag is not None and r.digest is None]


def _docker_manifest(images: list[_Image], parents: dict[str, str]) -> bytes:
    # One entry per image (config): manifests that differ only in how their layers are stored are one image.
    by_config: dict[str, dict[str, Any]] = {}
    for image in images:
        entry = by_config.setdefault(image.config.digest, {
            "Config": _blob_path(image.config.digest), "RepoTags": None,
            "Layers": [_blob_path(layer.digest) for layer in image.layers]})
        tags = [familiar(r) for r in _tags(image)]
        if tags:
            entry["RepoTags"] = list(dict.fromkeys((entry["RepoTags"] or []) + tags))
    for config, entry in by_config.items():
        if parents.get(config) in by_config:
            entry["Parent"] = parents[config]
    return _dumps(list(by_config.values()))


def _repositories(images: list[_Image]) -> bytes:
    repos: dict[str, dict[str, str]] = {}
    for image in images:
        if not image.diff_ids:
            continue
        for ref in _tags(image):
            assert ref.tag is not None
            repos.setdefault(ref.familiar_name, {})[ref.tag] = image.diff_ids[-1].removeprefix("sha256:")
    return _dumps(repos)


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _info(name: str, size: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    return info


def write(out: BinaryIO, export: ExportPlan, path_of: Callable[[str], Path]) -> None:
    """Write the archive (blocking: run it in a thread)."""
    # A stream's default record buffer (10 KiB) re-slices every blob read into thousands of small
    # writes, each copying what is left: most of an export's CPU time before it was set to CHUNK.
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      bufsize=CHUNK, copybufsize=CHUNK) as tar:
        # The layout first, then each image's manifest and config before its layers, bottom up: a
        # streaming reader (our import) knows what each layer is for when it arrives and applies it then.
        for name, data in export.documents:
            tar.addfile(_info(name, len(data)), io.BytesIO(data))
        tar.addfile(_info("blobs", 0, directory=True))
        tar.addfile(_info("blobs/sha256", 0, directory=True))
        for digest, size in export.blobs.items():
            with open(path_of(digest), "rb") as blob:
                tar.addfile(_info(_blob_path(digest), size), blob)
