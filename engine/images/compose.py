"""The documents of a new image made from a parent and at most one new layer: its config and its manifest.

`docker commit`, `docker import` and every step of `docker build` make images this way, as dockerd's
image.NewChildImage does: the parent's rootfs and history carry over, the new layer (unless its tar
is empty) is appended to `rootfs.diff_ids`, and one history entry says what made it. A step that
changes no file (ENV, LABEL, CMD...) adds a history entry marked `empty_layer` and no layer.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import platform as host_platform
from dataclasses import dataclass
from typing import Any

from engine import __version__

# The digest of a tar holding no entries (two zero blocks): a diff that changed nothing.
EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

# The same layer bytes under each manifest family's name for them.
_DOCKER_LAYER = {
    "application/vnd.oci.image.layer.v1.tar+gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar": "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar+zstd": "application/vnd.docker.image.rootfs.diff.tar.zstd",
}
_OCI_LAYER = {docker: oci for oci, docker in _DOCKER_LAYER.items()}

_HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(host_platform.machine(), host_platform.machine())


@dataclass(frozen=True)
class NewLayer:
    """A layer just written to the content store: its descriptor and its uncompressed digest."""

    descriptor: dict[str, Any]  # mediaType, digest, size
    diff_id: str

    @property
    def empty(self) -> bool:
        return self.diff_id == EMPTY_TAR_DIFF_ID


@dataclass(frozen=True)
class Blob:
    """A JSON document serialised once, so its digest and the bytes stored are the same bytes."""

    media_type: str
    data: bytes

    @classmethod
    def of(cls, media_type: str, doc: dict[str, Any]) -> Blob:
        return cls(media_type, json.dumps(doc, separators=(",", ":")).encode())

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    @property
    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


def now() -> str:
    """RFC 3339 with sub-second digits and a Z, as Go writes image times."""
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def child_config(parent: dict[str, Any] | None, config: dict[str, Any], *, layer: NewLayer | None, created: str,
                 created_by: str = "", author: str = "", comment: str = "", container: str = "",
                 container_config: dict[str, Any] | None = None,
                 platform: dict[str, str] | None = None) -> dict[str, Any]:
    """The image config of a child of `parent` (None: an image from scratch) whose runtime config is `config`."""
    parent = parent or {}
    diff_ids = list((parent.get("rootfs") or {}).get("diff_ids") or [])
    adds_layer = layer is not None and not layer.empty
    if adds_layer:
        assert layer is not None
        diff_ids.append(layer.diff_id)
    entry: dict[str, Any] = {"created": created}
    if created_by:
        entry["created_by"] = created_by
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    if not adds_layer:
        entry["empty_layer"] = True
    base = platform or {}
    doc: dict[str, Any] = {
        "architecture": parent.get("architecture") or base.get("architecture") or _HOST_ARCH,
        "os": parent.get("os") or base.get("os") or "linux",
    }
    variant = parent.get("variant") or base.get("variant")
    if variant:
        doc["variant"] = variant
    doc["config"] = config
    if container:
        doc["container"] = container
    if container_config is not None:
        doc["container_config"] = container_config
    # As dockerd stamps what its builder, commit and import make (inspect's DockerVersion).
    doc["docker_version"] = __version__
    doc["created"] = created
    if author:
        doc["author"] = author
    if comment:
        doc["comment"] = comment
    doc["history"] = list(parent.get("history") or []) + [entry]
    doc["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    return doc


def manifest(config: Blob, layers: list[dict[str, Any]], family: str = DOCKER_MANIFEST) -> Blob:
    """A single-platform manifest of `family` (Docker schema 2 or OCI), layer media types named its way."""
    names = _DOCKER_LAYER if family == DOCKER_MANIFEST else _OCI_LAYER
    entries = [{**layer, "mediaType": names.get(layer["mediaType"], layer["mediaType"])} for layer in layers]
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": family, "config": config.descriptor, "layers": entries}
    return Blob.of(family, doc)


def config_blob(doc: dict[str, Any], family: str = DOCKER_MANIFEST) -> Blob:
    return Blob.of(DOCKER_CONFIG if family == DOCKER_MANIFEST else OCI_CONFIG, doc)


def family_of(manifest_media_type: str | None) -> str:
    """A child keeps its parent's manifest family; an image from scratch is Docker schema 2, as dockerd makes it."""
    return OCI_MANIFEST if manifest_media_type == OCI_MANIFEST else DOCKER_MANIFEST
