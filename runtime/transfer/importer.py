"""Import: an image archive streamed in → verified blobs → manifests → unpacked snapshots → image records.

Two layouts are read (containerd's importer reads the same two):
- an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`), which Docker 25+ also writes;
  names come from each index entry's `io.containerd.image.name` annotation, else from
  `org.opencontainers.image.ref.name` when that is a whole reference (a bare tag names nothing);
- a docker-archive (`manifest.json` with Config, RepoTags and Layers paths; dockerd 20.10 writes
  `<id>/layer.tar` files, duplicates as symlinks). It has no manifests: one is made for each entry
  from its config and layers (Docker schema 2 media types; layers as stored, plain or compressed).
  When both are present the index decides and manifest.json's RepoTags add names.

Everything is checked before anything is named: blobs against their digests as they stream in,
sizes against descriptors, every layer's uncompressed digest against its config's diff_ids (a
compressed layer's while it is applied, when the import unpacks, so it is inflated once). Layers
are applied while the archive still streams in when its manifest.json comes first (early_unpack.py). The
import works under a lease (the request's, or its own): on any failure its own lease goes and the
collector takes what it wrote, so a corrupt or truncated archive stores nothing.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from runtime import malloc
from runtime.diff.verify import DiffDigester
from runtime.errors import DataLoss, InvalidArgument, NotFound
from runtime.metadata.content import ContentService
from runtime.metadata.gc import Collector
from runtime.metadata.images import Image, ImageStore
from runtime.metadata.leases import IMPORT_LABEL, LeaseStore, current_lease, reset_lease, set_lease
from runtime.metadata.snapshots import SnapshotService
from runtime.oci import (
    CONFIG_TYPES,
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    MT_DOCKER_CONFIG,
    MT_DOCKER_LAYER,
    MT_DOCKER_LAYER_GZIP,
    MT_DOCKER_MANIFEST,
    MT_OCI_CONFIG,
    MT_OCI_LAYER,
    MT_OCI_LAYER_GZIP,
    MT_OCI_LAYER_ZSTD,
    MT_OCI_MANIFEST,
    Descriptor,
    layer_compression,
    validate_digest,
)
from runtime.reference import parse as parse_reference
from runtime.remotes.platforms import normalize, select_manifest
from runtime.transfer.archive_read import Archive, Blob, BodyReader, read_archive
from runtime.transfer.early_unpack import EarlyUnpacker
from runtime.transfer.fetch import UNCOMPRESSED_LABEL
from runtime.transfer.unpack import chain_ids, unpack_layer

log = logging.getLogger("runtime.transfer")

NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
LEASE_EXPIRY = 3600
_DOCKER_LAYERS = {"none": MT_DOCKER_LAYER, "gzip": MT_DOCKER_LAYER_GZIP}
_OCI_LAYERS = {"none": MT_OCI_LAYER, "gzip": MT_OCI_LAYER_GZIP, "zstd": MT_OCI_LAYER_ZSTD}


class ImportOptions(BaseModel):
    snapshotter: str | None = None
    unpack: bool = True
    platform: str | None = None  # os/arch[/variant] of the manifest picked from an index (default: this host's)
    all_platforms: bool = False  # keep every manifest of an index that the archive holds
    records: bool = True  # name the images; without, the caller's lease holds them


class ImportedImage(BaseModel):
    names: list[str] = Field(default_factory=list)  # normalised references, as image records are named
    target: Descriptor
    config: str  # the config digest (Docker's image ID) of the manifest for this host or `platform`
    layers: list[Descriptor] = Field(default_factory=list)
    parent: str = ""  # the config digest manifest.json gives as its Parent (dockerd 20.10 writes one)


def _is_digest(text: str) -> bool:
    try:
        validate_digest(text)
    except InvalidArgument:
        return False
    return True


def _obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidArgument(f"invalid archive: {what} is not a JSON object")
    return data


def _descriptor(obj: Any, what: str) -> Descriptor:
    try:
        return Descriptor.model_validate(obj)
    except Exception as e:
        raise InvalidArgument(f"invalid archive: invalid {what} descriptor: {e}") from None


def _platform(spec: str | None) -> tuple[str, str | None, str | None]:
    if not spec:
        return "linux", None, None
    parts = spec.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform {spec!r}: expected os/arch[/variant]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def platform_matches(config: Any, spec: str | None) -> bool:
    """Whether an image config is for the platform asked for (any, when none was)."""
    if not spec or not isinstance(config, dict):
        return True
    os_, arch, variant = _platform(spec)
    assert arch is not None
    wanted = normalize(os_, arch, variant)
    have = normalize(str(config.get("os") or ""), str(config.get("architecture") or ""),
                     str(config.get("variant") or ""))
    return have[:2] == wanted[:2] and (variant is None or have[2] == wanted[2])


def _name(text: str, what: str) -> str:
    try:
        return str(parse_reference(text))
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid archive: {what} {text!r}: {e.message}") from None


def _entry_names(desc: Descriptor) -> list[str]:
    notes = desc.annotations or {}
    if NAME_ANNOTATION in notes:
        return [_name(notes[NAME_ANNOTATION], "image name")]
    ref = notes.get(REF_NAME_ANNOTATION, "")
    # A ref.name is often a bare tag ("latest"), which names no repository.
    if any(c in ref for c in "/:@"):
        return [_name(ref, "image name")]
    return []


class Importer:
    def __init__(self, content: ContentService, snapshots: dict[str, SnapshotService], default_snapshotter: str,
                 images: ImageStore, leases: LeaseStore, collector: Collector) -> None:
        self._content = content
        self._snapshots = snapshots
        self._default_snapshotter = default_snapshotter
        self._images = images
        self._leases = leases
        self._collector = collector

    async def run(self, body: AsyncIterator[bytes], opts: ImportOptions) -> list[ImportedImage]:
        try:
            return await self._run(body, opts)
        finally:
            await malloc.release()

    async def _run(self, body: AsyncIterator[bytes], opts: ImportOptions) -> list[ImportedImage]:
        snapshotter = opts.snapshotter or self._default_snapshotter
        if opts.unpack and snapshotter not in self._snapshots:
            raise InvalidArgument(f"snapshotter {snapshotter!r} is not loaded")
        _platform(opts.platform)
        if current_lease() is not None:
            return await self._import(body, opts, snapshotter)
        if not opts.records:
            raise InvalidArgument("records=false needs a lease (X-Pyengine-Lease) to hold what it imports")
        lease = await self._leases.create(labels={IMPORT_LABEL: "archive"}, expire_after=LEASE_EXPIRY)
        token = set_lease(lease.id)
        try:
            return await self._import(body, opts, snapshotter)
        finally:
            reset_lease(token)
            await self._leases.delete(lease.id)
            # A failed import leaves nothing; a good one nothing the images do not use (other platforms'
            # manifests, files no manifest names).
            await self._collector.collect()

    async def _import(self, body: AsyncIterator[bytes], opts: ImportOptions, snapshotter: str) -> list[ImportedImage]:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        early = EarlyUnpacker(self._content, self._snapshots[snapshotter],
                              lambda config: platform_matches(config, opts.platform)) if opts.unpack else None
        try:
            archive = await asyncio.to_thread(read_archive, self._content, loop, BodyReader(body, loop),
                                              not opts.unpack, early)
        finally:
            if early is not None:
                await early.stop()
        if archive.layout.get("index.json") is not None:
            found = await self._from_index(archive, opts)
        elif archive.layout.get("manifest.json") is not None:
            found = await self._from_docker_manifest(archive, opts)
        else:
            raise InvalidArgument("invalid archive: it contains neither a manifest.json nor an index.json")
        read = time.monotonic() - started
        if opts.unpack:
            for image in found:
                await self._unpack(image, snapshotter)
        if opts.records:
            for image in found:
                for name in image.names:
                    await self._images.put(Image(name=name, target=image.target))
        log.info("import images=%d names=%s read=%.3fs (layers applied meanwhile: %d, as they streamed in: %d) "
                 "total=%.3fs", len(found), ",".join(n for i in found for n in i.names), read,
                 early.applied if early else 0, early.streamed if early else 0, time.monotonic() - started)
        return found

    # -- OCI layout ------------------------------------------------------------------------------

    async def _from_index(self, archive: Archive, opts: ImportOptions) -> list[ImportedImage]:
        index = _obj(archive.json("index.json"), "index.json")
        entries = index.get("manifests")
        if not isinstance(entries, list):
            raise InvalidArgument("invalid archive: index.json has no manifests list")
        extra = self._repo_tags(archive)
        # One image per target: a layout lists a manifest once per name, manifest.json once per config.
        found: dict[str, ImportedImage] = {}
        for entry in entries:
            desc = _descriptor(entry, "index.json entry")
            config, layers = await self._target(archive, desc, opts)
            if desc.mediaType in MANIFEST_TYPES and not platform_matches(
                    json.loads(await self._content.read(config)), opts.platform):
                continue  # as dockerd's load with a platform: images for others are left out
            image = found.setdefault(desc.digest, ImportedImage(
                target=Descriptor(mediaType=desc.mediaType, digest=desc.digest, size=desc.size), config=config,
                layers=layers))
            image.names = list(dict.fromkeys(image.names + _entry_names(desc) + extra.pop(config, [])))
        return list(found.values())

    def _repo_tags(self, archive: Archive) -> dict[str, list[str]]:
        """config digest -> the names manifest.json gives it (Docker 25+ writes both files)."""
        items = archive.json("manifest.json")
        out: dict[str, list[str]] = {}
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("Config"), str):
                digest = archive.blob(item["Config"], "config").digest
                out.setdefault(digest, []).extend(_tag(t) for t in item.get("RepoTags") or [])
        return out

    def _checked_blob(self, archive: Archive, desc: Descriptor, what: str) -> Blob:
        blob = archive.has_blob(desc.digest)
        if blob is None:
            raise InvalidArgument(f"invalid archive: {what} {desc.digest} is not in the archive")
        if blob.size != desc.size:
            raise DataLoss(f"invalid archive: {what} {desc.digest} has {blob.size} bytes, its descriptor says "
                           f"{desc.size}")
        return blob

    async def _json_blob(self, archive: Archive, desc: Descriptor, what: str) -> dict[str, Any]:
        self._checked_blob(archive, desc, what)
        try:
            return _obj(json.loads(await self._content.read(desc.digest)), f"{what} {desc.digest}")
        except ValueError:
            raise InvalidArgument(f"invalid archive: {what} {desc.digest} is not valid JSON") from None

    async def _target(self, archive: Archive, desc: Descriptor,
                      opts: ImportOptions) -> tuple[str, list[Descriptor]]:
        """Check what an index entry points at; (config digest, layers) of the manifest for this platform."""
        if desc.mediaType in MANIFEST_TYPES:
            return await self._manifest(archive, desc, opts)
        if desc.mediaType not in INDEX_TYPES:
            raise InvalidArgument(f"invalid archive: unsupported media type {desc.mediaType!r} in index.json")
        index = await self._json_blob(archive, desc, "index")
        os_, arch, variant = _platform(opts.platform)
        chosen = select_manifest(index, os_, arch, variant)
        if archive.has_blob(chosen.digest) is None:
            raise NotFound(f"invalid archive: the manifest for {opts.platform or 'this platform'} of index "
                           f"{desc.digest} is not in the archive")
        children = [chosen]
        if opts.all_platforms:
            children += [d for d in (_descriptor(e, "index entry") for e in index.get("manifests") or [])
                         if d.digest != chosen.digest and d.mediaType in MANIFEST_TYPES and archive.has_blob(d.digest)]
        picked: tuple[str, list[Descriptor]] | None = None
        for child in children:
            result = await self._manifest(archive, child, opts)
            picked = picked or result
        await self._content.add_refs(desc.digest, [("content", c.digest) for c in children])
        assert picked is not None
        return picked

    async def _manifest(self, archive: Archive, desc: Descriptor, opts: ImportOptions) -> tuple[str, list[Descriptor]]:
        manifest = await self._json_blob(archive, desc, "manifest")
        config = _descriptor(manifest.get("config"), "config")
        layers = [_descriptor(layer, "layer") for layer in manifest.get("layers") or []]
        if config.mediaType not in CONFIG_TYPES:
            raise InvalidArgument(f"invalid archive: unsupported config media type {config.mediaType!r}")
        for layer in layers:
            if layer.mediaType not in LAYER_TYPES:
                raise InvalidArgument(f"invalid archive: unsupported layer media type {layer.mediaType!r}")
        config_doc = await self._json_blob(archive, config, "config")
        blobs = [self._checked_blob(archive, layer, "layer") for layer in layers]
        await self._check_layers(config_doc, config.digest, blobs, opts.unpack)
        await self._content.add_refs(desc.digest, [("content", config.digest)] + [("content", b.digest) for b in blobs])
        return config.digest, layers

    async def _check_layers(self, config: dict[str, Any], config_digest: str, blobs: list[Blob],
                            unpacking: bool) -> None:
        """Layer count and diff_ids against the config; an unpack checks compressed layers while applying them."""
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(blobs):
            raise InvalidArgument(f"invalid manifest, layers length mismatch: expected {len(blobs)}, "
                                  f"got {len(diff_ids)} (config {config_digest})")
        for i, (blob, diff_id) in enumerate(zip(blobs, diff_ids)):
            if unpacking and blob.compression != "none":
                continue
            if blob.diff_id != diff_id:
                raise DataLoss(f"invalid archive: layer {i} ({blob.name}) has diff_id {blob.diff_id or 'unreadable'}"
                               f", its config {config_digest} says {diff_id}")
            if blob.compression != "none":
                await self._content.set_label(blob.digest, UNCOMPRESSED_LABEL, diff_id)

    # -- docker-archive --------------------------------------------------------------------------

    async def _from_docker_manifest(self, archive: Archive, opts: ImportOptions) -> list[ImportedImage]:
        items = archive.json("manifest.json")
        if not isinstance(items, list):
            raise InvalidArgument("invalid archive: manifest.json is not a list")
        found: list[ImportedImage] = []
        for item in items:
            item = _obj(item, "manifest.json entry")
            if not isinstance(item.get("Config"), str) or not isinstance(item.get("Layers") or [], list):
                raise InvalidArgument("invalid archive: a manifest.json entry has no Config")
            config_blob = archive.blob(item["Config"], "config")
            try:
                config_doc = _obj(json.loads(await self._content.read(config_blob.digest)), "image config")
            except ValueError:
                raise InvalidArgument(f"invalid archive: config {item['Config']!r} is not valid JSON") from None
            blobs = [archive.blob(str(p), "layer") for p in item.get("Layers") or []]
            await self._check_layers(config_doc, config_blob.digest, blobs, opts.unpack)
            if not platform_matches(config_doc, opts.platform):
                continue
            target, layers = await self._make_manifest(config_blob, blobs)
            parent = item.get("Parent")
            found.append(ImportedImage(names=[_tag(t) for t in item.get("RepoTags") or []], target=target,
                                       config=config_blob.digest, layers=layers,
                                       parent=parent if isinstance(parent, str) and _is_digest(parent) else ""))
        return found

    async def _make_manifest(self, config: Blob, blobs: list[Blob]) -> tuple[Descriptor, list[Descriptor]]:
        oci = any(b.compression == "zstd" for b in blobs)  # schema 2 has no zstd layer type
        kinds = _OCI_LAYERS if oci else _DOCKER_LAYERS
        layers = [Descriptor(mediaType=kinds[b.compression], digest=b.digest, size=b.size) for b in blobs]
        doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST if oci else MT_DOCKER_MANIFEST,
               "config": {"mediaType": MT_OCI_CONFIG if oci else MT_DOCKER_CONFIG, "size": config.size,
                          "digest": config.digest},
               "layers": [layer.wire() for layer in layers]}
        data = json.dumps(doc, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        writer = await self._content.writer(f"import-manifest-{secrets.token_hex(8)}", digest, len(data))
        try:
            await asyncio.to_thread(writer.write, data)
            await self._content.commit(writer, len(data), digest,
                                       [("content", config.digest)] + [("content", b.digest) for b in blobs])
        finally:
            await asyncio.to_thread(writer.close)
        return Descriptor(mediaType=str(doc["mediaType"]), digest=digest, size=len(data)), layers

    # -- unpack ----------------------------------------------------------------------------------

    async def _unpack(self, image: ImportedImage, snapshotter: str) -> None:
        config = json.loads(await self._content.read(image.config))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if not diff_ids:
            return
        service = self._snapshots[snapshotter]
        chains = chain_ids(diff_ids)
        parent: str | None = None
        for i, (layer, diff_id, chain) in enumerate(zip(image.layers, diff_ids, chains)):
            path = str(self._content.path(layer.digest))
            compression = layer_compression(layer.mediaType)
            known = (await self._content.info(layer.digest)).labels.get(UNCOMPRESSED_LABEL) == diff_id
            # Plain layers were checked as they streamed in (digest = diff_id); compressed ones are now.
            verified = compression == "none" or known
            try:
                applied = await unpack_layer(service, layer, path, diff_id, chain, parent, verified=verified)
                if not applied and not verified:
                    # Someone made this snapshot before: the blob itself still has to be what the config says.
                    actual = await asyncio.to_thread(_diff_digest, path, compression)
                    if actual != diff_id:
                        raise DataLoss(f"layer diff_id mismatch: got {actual}, config says {diff_id}")
            except DataLoss as e:
                raise DataLoss(f"invalid archive: layer {i} ({layer.digest}): {e.message}") from None
            if not verified:
                await self._content.set_label(layer.digest, UNCOMPRESSED_LABEL, diff_id)
            parent = chain
        await self._content.add_refs(image.config, [("snapshot", f"{snapshotter}/{chains[-1]}")])


def _diff_digest(path: str, compression: str) -> str:
    digester = DiffDigester(compression)
    with open(path, "rb") as blob:
        while chunk := blob.read(1 << 20):
            digester.feed(chunk)
    return digester.digest()


def _tag(text: Any) -> str:
    if not isinstance(text, str):
        raise InvalidArgument(f"invalid archive: invalid tag {text!r}")
    ref = parse_reference(text) if "@" not in text else None
    if ref is None or ref.tag is None or ":" not in text.rsplit("/", 1)[-1]:
        raise InvalidArgument(f'invalid tag "{text}"')
    return str(ref)
