"""Docker's view of images: runtime image records grouped by their config digest, which is the image ID."""
from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runtime.client import InvalidArgument
from runtime.client.records import Image as RuntimeImage
from runtime.client.reference import Reference, familiar, parse

# An image that lost its last name (a moved tag, rmi -f while a container uses it) is
# kept under this prefix. '<' is outside the reference grammar, so such a name can
# never be mistaken for, or collide with, a repository someone pulls.
DANGLING_PREFIX = "<none>@"

# A build step's result is kept under this prefix and its cache key: the build cache. An image that has
# no other name is an intermediate one, which `docker images` shows only with --all, as dockerd does.
BUILD_PREFIX = "<build>@"

# A name made by `docker tag` rather than a pull: it has no digest in its repository.
TAGGED_LABEL = "io.pyengine.tagged"
# A pulled tag whose repository digest `rmi repo@digest` removed: the tag stays, its digest is no name any more.
DIGEST_REMOVED_LABEL = "io.pyengine.digest-removed"

# An image `rmi -f` deleted while stopped containers used it (dockerd deletes it; they run on from its layers):
# its one record, the image's ID as the value, is hidden from every listing and keeps the content until the
# last of those containers goes.
REMOVED_LABEL = "io.pyengine.removed"

EPOCH = "1970-01-01T00:00:00Z"
_TRAILING_ZEROS = re.compile(r"(\.\d+)(Z|[+-]\d\d:\d\d)$")
NEVER = "0001-01-01T00:00:00Z"  # Go's zero time: how dockerd shows "never tagged"


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """The chain ID of each layer of a stack (the key of its snapshot), bottom first."""
    out: list[str] = []
    for diff in diff_ids:
        out.append(diff if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


def short_id(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def rfc3339(ts: float) -> str:
    """Go's RFC3339Nano (to the microsecond): the fraction's trailing zeros dropped, as dockerd writes times."""
    text = datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "")
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "Z"


def unix_seconds(created: str | None) -> int:
    """An image config's RFC 3339 `created` as unix seconds (0 when absent or unreadable)."""
    if not created:
        return 0
    try:
        return int(datetime.datetime.fromisoformat(created).timestamp())
    except ValueError:
        return 0


@dataclass(frozen=True)
class Record:
    """One runtime image record: a name pointing at a manifest or index."""

    name: str
    target: dict[str, Any]
    updated: float
    ref: Reference | None  # None: a dangling marker, or a name that is no Docker reference
    tagged: bool = False
    digest_removed: bool = False
    removed: bool = False

    @classmethod
    def from_runtime(cls, record: RuntimeImage) -> Record:
        ref: Reference | None = None
        if not record.name.startswith(DANGLING_PREFIX):
            try:
                ref = parse(record.name)
            except InvalidArgument:
                pass
        return cls(name=record.name, target=record.target.model_dump(), updated=record.updated, ref=ref,
                   tagged=TAGGED_LABEL in record.labels, digest_removed=DIGEST_REMOVED_LABEL in record.labels,
                   removed=REMOVED_LABEL in record.labels)

    @property
    def digest(self) -> str:
        return str(self.target["digest"])

    @property
    def gives_digest(self) -> bool:
        """Whether this name makes `repository@digest` a name of the image too (a pull's names do)."""
        return self.ref is not None and not self.tagged and not self.digest_removed

    @property
    def is_tag(self) -> bool:
        return self.ref is not None and self.ref.tag is not None and self.ref.digest is None

    @property
    def display(self) -> str:
        """How Docker shows this name: `busybox:latest`, `busybox@sha256:…`."""
        return familiar(self.ref) if self.ref is not None else self.name


def repo_tags(records: list[Record]) -> list[str]:
    return [r.display for r in records if r.is_tag]


def repo_digests(records: list[Record]) -> list[str]:
    """`name@digest` per repository digest; a pulled tag contributes the digest it was pulled at."""
    out = [f"{r.ref.familiar_name}@{r.ref.digest or r.digest}" for r in records if r.ref is not None and r.gives_digest]
    return list(dict.fromkeys(out))


@dataclass
class LocalImage:
    id: str  # the config digest
    config: dict[str, Any]
    manifest_digest: str
    layers: list[dict[str, Any]]  # the manifest's layer descriptors
    manifest_type: str = ""  # the manifest's media type (OCI manifests may leave it out: then "")
    records: list[Record] = field(default_factory=list)
    # Each layer's bytes unpacked, as Docker counts them (engine/images/sizes.py), once looked up.
    unpacked: list[int] | None = None

    @property
    def layer_sizes(self) -> list[int]:
        """Unpacked when known; else as stored (compressed), for layers that were never unpacked here."""
        if self.unpacked is not None:
            return list(self.unpacked)
        return [int(layer.get("size") or 0) for layer in self.layers]

    @property
    def size(self) -> int:
        return sum(self.layer_sizes)

    @property
    def diff_ids(self) -> list[str]:
        return [str(d) for d in (self.config.get("rootfs") or {}).get("diff_ids") or []]

    @property
    def created(self) -> int:
        return unix_seconds(self.config.get("created"))

    @property
    def created_at(self) -> float:
        """`created` to the microsecond: images made within one second are told apart (`before=`, `since=`)."""
        created = self.config.get("created")
        try:
            return datetime.datetime.fromisoformat(created).timestamp() if isinstance(created, str) else 0.0
        except ValueError:
            return 0.0

    @property
    def created_rfc3339(self) -> str:
        """As dockerd formats the parsed time (Go's RFC3339Nano): a fraction's trailing zeros dropped."""
        created = self.config.get("created")
        if not isinstance(created, str) or not unix_seconds(created):
            return EPOCH
        return _TRAILING_ZEROS.sub(lambda m: m.group(1).rstrip("0").rstrip(".") + m.group(2), created)

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})

    @property
    def named(self) -> list[Record]:
        return [r for r in self.records if r.ref is not None]

    @property
    def repo_tags(self) -> list[str]:
        return repo_tags(self.records)

    @property
    def repo_digests(self) -> list[str]:
        return repo_digests(self.records)

    @property
    def repositories(self) -> set[str]:
        return {r.ref.name for r in self.named if r.ref is not None}

    @property
    def dangling(self) -> bool:
        return not self.named

    @property
    def intermediate(self) -> bool:
        return all(r.name.startswith(BUILD_PREFIX) for r in self.records)

    @property
    def last_tag_time(self) -> str:
        tagged = [r.updated for r in self.records if r.tagged]
        return rfc3339(max(tagged)) if tagged else NEVER
