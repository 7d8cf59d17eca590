"""The JSON shapes of image list, inspect and history, at the newest API version (engine/api/versions.py
makes older clients' shapes from them)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from engine.images.model import (
    LocalImage,
    chain_ids,
    Record,
    repo_digests,
    repo_tags,
    unix_seconds,
)

# What dockerd shows for every image config key the image leaves unset.
_CONFIG_DEFAULTS: dict[str, Any] = {
    "User": "", "Env": None, "Cmd": None, "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None,
    "Labels": None,
}


# An image config's keys (Docker's image spec, a superset of OCI's); a config written by an old builder also
# carries a container's keys, which are not the image's.
_CONFIG_KEYS = frozenset({*_CONFIG_DEFAULTS, "ExposedPorts", "StopSignal", "ArgsEscaped", "Healthcheck", "Shell"})


def image_config(doc: dict[str, Any] | None) -> dict[str, Any]:
    return {**_CONFIG_DEFAULTS, **{k: v for k, v in (doc or {}).items() if k in _CONFIG_KEYS}}


def summary(image: LocalImage, names: list[Record], parent: str = "") -> dict[str, Any]:
    return {
        "Containers": -1, "Created": image.created, "Id": image.id, "Labels": image.labels or None, "ParentId": parent,
        "RepoDigests": repo_digests(names), "RepoTags": repo_tags(names), "SharedSize": -1, "Size": image.size,
    }


def shared_sizes(images: list[LocalImage]) -> dict[str, int]:
    """Per image ID, the bytes of its layers another image has too (`shared-size`, dockerd's SharedSize)."""
    users = Counter(c for image in images for c in set(chain_ids(image.diff_ids)))
    return {image.id: sum(size for c, size in zip(chain_ids(image.diff_ids), image.layer_sizes) if users[c] > 1)
            for image in images}


def inspect(image: LocalImage, parent: str = "") -> dict[str, Any]:
    config = image.config
    history = config.get("history") if isinstance(config.get("history"), list) else []
    # dockerd 20.10 wrote a commit's message into its history entry only; its inspect reads it from there.
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    out: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": image.repo_digests,
        "Parent": parent,
        "Comment": config.get("comment") or last.get("comment") or "",
        "Created": image.created_rfc3339,
        "DockerVersion": config.get("docker_version") or "",
        "Author": config.get("author") or "",
        "Config": image_config(config.get("config")),
        "Architecture": config.get("architecture") or "",
        "Os": config.get("os") or "",
        "Size": image.size,
        "GraphDriver": {"Data": {}, "Name": "overlayfs"},
        "RootFS": {"Type": "layers", "Layers": list((config.get("rootfs") or {}).get("diff_ids") or [])},
        "Metadata": {"LastTagTime": image.last_tag_time},
    }
    if config.get("variant"):
        out["Variant"] = config["variant"]
    if config.get("os.version"):
        out["OsVersion"] = config["os.version"]
    return out


def history(image: LocalImage, ancestry: Sequence[LocalImage] = ()) -> list[dict[str, Any]]:
    """Newest first; the top entry is the image's, the top entry of each ancestor's part is that ancestor's (the
    images `docker commit` made it from, nearest first), the rest are `<missing>` as after a pull."""
    entries = [h for h in image.config.get("history") or [] if isinstance(h, dict)]
    if not entries:
        entries = [{} for _ in image.layers]
    sizes = iter(image.layer_sizes)
    rows = []
    for entry in entries:
        size = 0 if entry.get("empty_layer") else next(sizes, 0)
        rows.append({"Comment": entry.get("comment") or "", "Created": unix_seconds(entry.get("created")),
                     "CreatedBy": entry.get("created_by") or "", "Id": "<missing>", "Size": size, "Tags": None})
    rows.reverse()
    for index, owner in [(0, image), *((len(rows) - _entries(a), a) for a in ancestry)]:
        if 0 <= index < len(rows) and rows[index]["Id"] == "<missing>":
            rows[index]["Id"] = owner.id
            rows[index]["Tags"] = owner.repo_tags or None
    return rows


def _entries(image: LocalImage) -> int:
    return len([h for h in image.config.get("history") or [] if isinstance(h, dict)]) or len(image.layers)
