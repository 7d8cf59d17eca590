"""POST /images/{name}/push: a runtime push per tag, reported as dockerd's push messages.

dockerd names a layer in its push messages by its diff ID's short form (the uncompressed digest, as `docker
history` and the layer store know it), announces every layer of a tag with `Preparing` (top layer first),
then says per layer `Waiting`, `Pushing` (with a progress bar), `Pushed`, `Layer already exists` or
`Mounted from <repository>`; a tag ends with `<tag>: digest: <digest> size: <bytes>` and an `aux` message
carrying the same (what the SDK and `docker push --quiet` read). Without a tag every tag of the repository
is pushed, in name order; `platform` narrows an index to that platform's manifest and must match a
single-platform image. Registry mirrors serve pulls only; insecure registries apply.
"""
from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from engine.errors import Internal, InvalidArgument, NotFound
from engine.images import platforms
from engine.images.compose import OCI_MANIFEST
from engine.images.model import LocalImage, Record, short_id
from engine.images.platforms import Platform
from engine.images.pull import RegistryAuth, progress_bar
from engine.images.store import ImageService
from runtime.client.push import PushAPI
from runtime.client.reference import Reference, familiar, parse

_INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"})
# The runtime's per-blob states and dockerd's words for them; `checking` has none.
_WORDS = {"waiting": "Waiting", "exists": "Layer already exists", "done": "Pushed"}


def _layer(status: str, layer: str, current: int | None = None, total: int = 0) -> dict[str, Any]:
    if current is None:
        return {"status": status, "progressDetail": {}, "id": layer}
    return {"status": status, "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(current, total), "id": layer}


def push_reference(name: str, tag: str) -> tuple[Reference, bool]:
    """The repository (with `tag`) and whether one tag was asked for; a tag in `name` is ignored (API 1.50)."""
    if "@" in name or tag.startswith("sha256:"):
        raise InvalidArgument("cannot push a digest reference")
    repo = parse(name)
    return (parse(f"{repo.name}:{tag}"), True) if tag else (repo, False)


def push_platform(raw: str) -> Platform | None:
    """The `platform` query parameter: a JSON OCI platform (`{"os": "linux", "architecture": "arm64"}`)."""
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise InvalidArgument(f"failed to parse platform: {e}") from None
    if not isinstance(doc, dict) or not doc.get("os") or not doc.get("architecture"):
        raise InvalidArgument("failed to parse platform: os and architecture are required")
    return platforms.parse("/".join(str(doc[k]) for k in ("os", "architecture", "variant") if doc.get(k)))


class ImagePusher:
    def __init__(self, images: ImageService, runtime: PushAPI) -> None:
        self._images = images
        self._runtime = runtime

    async def _targets(self, ref: Reference, one: bool, wanted: Platform | None
                       ) -> tuple[list[tuple[Record, LocalImage]], NotFound | None]:
        """What to push, or why nothing (told in the stream); a platform that does not match raises at once."""
        tagged = [(record, image) for image in await self._images.images() for record in image.records
                  if record.is_tag and record.ref is not None and record.ref.name == ref.name]
        if not tagged:
            return [], NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        chosen = sorted(tagged, key=lambda pair: pair[0].name) if not one else \
            [(record, image) for record, image in tagged if record.name == str(ref)]
        if not chosen:
            return [], NotFound(f"tag does not exist: {familiar(ref)}")
        for record, image in chosen:
            # An index is narrowed to the platform by the runtime; a single manifest has one, which must match.
            if wanted is not None and record.target.get("mediaType") not in _INDEX_TYPES and \
                    not wanted.matches(platforms.of_image(image.config)):
                raise NotFound(f"image {record.display} does not provide the platform {wanted}: it is "
                               f"{platforms.of_image(image.config)}")
        return chosen, None

    async def push(self, name: str, tag: str, platform: str, auth: RegistryAuth | None,
                   insecure: list[str]) -> AsyncGenerator[dict[str, Any], None]:
        """Docker's push messages. A bad name or platform raises before the first one (a plain 400 or 404); an
        image that is not here comes after it, in the stream, as dockerd says it (the SDK reads it, the CLI prints
        it)."""
        ref, one = push_reference(name, tag)
        wanted = push_platform(platform)
        targets, missing = await self._targets(ref, one, wanted)
        yield {"status": f"The push refers to repository [{ref.name}]"}
        if missing is not None:
            raise missing
        for record, image in targets:
            async for message in self._push_tag(record, image, wanted, auth, insecure):
                yield message

    async def _record_digest(self, record: Record, image: LocalImage, digest: str, size: int) -> None:
        """The repository digest a push made (`repo@sha256:...`), kept as dockerd keeps it: in RepoDigests."""
        assert record.ref is not None
        if digest == record.digest:
            target = dict(record.target)
        elif digest == image.manifest_digest:
            target = {"mediaType": image.manifest_type or OCI_MANIFEST, "digest": digest, "size": size}
        else:
            return
        await self._images.runtime.put_image(f"{record.ref.name}@{digest}", target)

    async def _platform(self, record: Record, image: LocalImage, wanted: Platform | None) -> str | None:
        """The platform to narrow an index to: the one asked for, else, when only some of its platforms are
        here, the one that is (as dockerd would push it)."""
        if record.target.get("mediaType") not in _INDEX_TYPES:
            return None
        if wanted is not None:
            return str(wanted)
        index = json.loads(await self._images.runtime.read_content(record.digest))
        present = {c.digest for c in await self._images.runtime.content()}
        if all(m.get("digest") in present for m in index.get("manifests") or []):
            return None
        return str(platforms.of_image(image.config))

    async def _push_tag(self, record: Record, image: LocalImage, wanted: Platform | None, auth: RegistryAuth | None,
                        insecure: list[str]) -> AsyncGenerator[dict[str, Any], None]:
        assert record.ref is not None and record.ref.tag is not None
        diff_ids = (image.config.get("rootfs") or {}).get("diff_ids") or []
        ids = {str(layer["digest"]): short_id(str(diff)) for layer, diff in zip(image.layers, diff_ids)}
        events = self._runtime.push(record.name, record.name, insecure=insecure,
                                    credentials=auth.credentials() if auth else None,
                                    platform=await self._platform(record, image, wanted),
                                    max_concurrent_uploads=self._images.registries.max_uploads)
        digest, size = "", 0
        try:
            # The registry's first answer before the layers are announced: one that cannot be reached (or refuses
            # the credentials) fails the push right after its first line, as dockerd's ping of the registry does.
            first: list[dict[str, Any]] = []
            async for event in events:
                first.append(event)
                if event.get("status") not in _BEFORE_THE_REGISTRY:
                    break
            for layer in reversed(image.layers):
                yield _layer("Preparing", ids[str(layer["digest"])])
            async for event in _chain(first, events):
                if event.get("status") == "complete":
                    digest, size = str(event["digest"]), int(event["size"])
                    break
                layer_id = ids.get(str(event.get("digest")))
                if layer_id is None or event.get("kind") != "layer":
                    continue
                status = event.get("status")
                if status == "uploading":
                    yield _layer("Pushing", layer_id, int(event.get("current") or 0), int(event.get("total") or 0))
                elif status == "mounted":
                    yield _layer(f"Mounted from {event.get('from')}", layer_id)
                elif status in _WORDS:
                    yield _layer(_WORDS[str(status)], layer_id)
            else:
                raise Internal(f"the runtime's push of {record.name} ended without completing")
        finally:
            await events.aclose()
        await self._record_digest(record, image, digest, size)
        self._images.events.image("push", familiar(record.ref), record.ref.familiar_name)
        tag = record.ref.tag
        yield {"status": f"{tag}: digest: {digest} size: {size}"}
        yield {"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}}


# What the runtime tells of a push before it has asked the registry anything.
_BEFORE_THE_REGISTRY = frozenset({"pushing", "waiting", "checking"})


async def _chain(first: list[dict[str, Any]], rest: AsyncIterator[dict[str, Any]]
                 ) -> AsyncGenerator[dict[str, Any], None]:
    for item in first:
        yield item
    async for item in rest:
        yield item
