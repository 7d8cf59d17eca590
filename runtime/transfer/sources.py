"""Where a blob is known to live in registries: containerd's distribution source labels.

A pull or push records `containerd.io/distribution.source.<registry host>=<repo>[,<repo>...]` on what it moved,
so a later push to another repository of the same registry can ask for a cross-repository mount instead of
uploading the bytes again. The label reads the same as containerd's to anyone who knows it.
"""
from __future__ import annotations

from collections.abc import Iterable

from runtime.errors import NotFound
from runtime.metadata.content import ContentService

SOURCE_LABEL_PREFIX = "containerd.io/distribution.source."
# containerd's bound on a label's length; older repositories give way to newer ones.
_MAX_VALUE = 4096


def repositories(labels: dict[str, str], host: str) -> list[str]:
    """The repositories of `host` a blob came from or went to, most recent last."""
    value = labels.get(SOURCE_LABEL_PREFIX + host, "")
    return [repo for repo in value.split(",") if repo]


async def record(content: ContentService, digests: Iterable[str], host: str, repository: str) -> None:
    key = SOURCE_LABEL_PREFIX + host
    for digest in dict.fromkeys(digests):
        try:
            info = await content.info(digest)
        except NotFound:
            continue
        repos = [r for r in repositories(info.labels, host) if r != repository] + [repository]
        while len(",".join(repos)) > _MAX_VALUE and len(repos) > 1:
            repos.pop(0)
        value = ",".join(repos)
        if info.labels.get(key) != value:
            await content.set_label(digest, key, value)
