"""OCI and Docker image-spec types shared by the content, pull and unpack code."""
from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.errors import InvalidArgument

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

INDEX_TYPES = frozenset({MT_OCI_INDEX, MT_DOCKER_LIST})
MANIFEST_TYPES = frozenset({MT_OCI_MANIFEST, MT_DOCKER_MANIFEST})
CONFIG_TYPES = frozenset({MT_OCI_CONFIG, MT_DOCKER_CONFIG})
LAYER_TYPES = frozenset(
    {MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_OCI_LAYER_ZSTD, MT_DOCKER_LAYER_GZIP, MT_DOCKER_LAYER}
)

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def validate_digest(digest: str) -> str:
    """Only sha256 is accepted: it is what registries and our content store use."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}: expected sha256:<64 hex>")
    return digest


Compression = Literal["gzip", "zstd", "none"]


def layer_compression(media_type: str) -> Compression:
    """'gzip', 'zstd' or 'none' for a layer media type."""
    if media_type.endswith("+gzip") or media_type.endswith(".tar.gzip"):
        return "gzip"
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith(".tar"):
        return "none"
    raise InvalidArgument(f"unsupported layer media type {media_type!r}")


class Platform(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = Field(default=None, alias="os.version")


class Descriptor(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    mediaType: str
    digest: str
    size: int
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    platform: Platform | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, by_alias=True)


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """A manifest, index or config document: InvalidArgument naming `what` unless it is a JSON object."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"invalid {what} JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {what}: not a JSON object")
    return doc


def descriptor(obj: Any, what: str) -> Descriptor:
    """A descriptor from a document, checked: its fields, its digest's form and a non-negative size."""
    try:
        desc = Descriptor.model_validate(obj)
    except ValidationError as e:
        raise InvalidArgument(f"invalid {what} descriptor: {e.errors()[0]['msg']}") from None
    validate_digest(desc.digest)
    if desc.size < 0:
        raise InvalidArgument(f"invalid {what} descriptor: negative size")
    return desc
