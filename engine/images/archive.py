"""docker save and docker load by dockerd's rules, over the runtime's archive export and import.

Save picks images as dockerd's tarexport does: a full ID saves that image without names; a name
without tag or digest saves every tag of that repository (or, with none, the image an ID prefix
names); `name:tag` saves that tag; `name@digest` the image, unnamed. Only tags become RepoTags.

Load imports under a lease of its own with the runtime naming nothing, then names what the
archive carried the way dockerd does: a tag that pointed at another image moves (that image stays,
dangling, if it was its last name, and the stream says so in dockerd's words); a tag already on
the same image stays as it is (its repository digest with it); an image that arrives without a
name and is not here yet is kept as a dangling image. Loaded names are tags, not pulls: they carry
no repository digest, as in dockerd. One `load` event per image, as dockerd's graph-driver store.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.errors import InvalidArgument, NotFound
from engine.events import EventBus
from engine.images.leases import drop_leftover_leases, new_lease_id
from engine.images.lookup import find
from engine.images.model import DANGLING_PREFIX, TAGGED_LABEL, LocalImage
from engine.images.pull import progress_bar
from engine.images.store import ImageService
from runtime.client import InvalidArgument as RuntimeInvalidArgument
from runtime.client.archives import ArchiveAPI, ImportedImage
from runtime.client.protocol import LeaseAPI
from runtime.client.records import ContentInfo
from runtime.client.reference import familiar, parse

_FULL_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
# A load that dies with the engine leaves its lease behind: the engine's next start drops it, or else the runtime's
# collector after this.
_LEASE_EXPIRY = 3600.0


class ArchiveRuntime(ArchiveAPI, LeaseAPI, Protocol):
    async def put_image(self, name: str, target: dict[str, Any], labels: dict[str, str] | None = None,
                        namespace: str | None = None) -> Any: ...

    async def content(self, namespace: str | None = None) -> list[ContentInfo]: ...


@dataclass
class Selection:
    """What a save exports: the runtime's record names to export as tags, and records of unnamed images."""

    tags: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)
    images: list[LocalImage] = field(default_factory=list)


def _name_only(term: str) -> bool:
    return "@" not in term and ":" not in term.rsplit("/", 1)[-1]


def select(images: list[LocalImage], terms: list[str]) -> Selection:
    chosen: dict[str, tuple[LocalImage, list[str]]] = {}

    def add(image: LocalImage, tag: str | None) -> None:
        _, tags = chosen.setdefault(image.id, (image, []))
        if tag is not None and tag not in tags:
            tags.append(tag)

    for term in terms:
        full = _FULL_ID.fullmatch(term)
        if full:
            add(find(images, term).image, None)
            continue
        try:
            ref = parse(term)
        except RuntimeInvalidArgument:
            add(find(images, term).image, None)
            continue
        if _name_only(term):
            tagged = [(image, r.name) for image in images for r in image.records
                      if r.is_tag and r.ref is not None and r.ref.name == ref.name]
            # The repository's digest references count too, but only tags become names.
            by_digest = [image for image in images for r in image.named
                         if r.ref is not None and r.ref.name == ref.name and not r.is_tag]
            for image, name in tagged:
                add(image, name)
            for image in by_digest:
                add(image, None)
            if not tagged and not by_digest:
                try:
                    add(find(images, term).image, None)
                except NotFound:
                    raise NotFound(f"No such image: {term}") from None
            continue
        if ref.digest is not None:
            add(find(images, term).image, None)
            continue
        owner = next((image for image in images for r in image.records if r.is_tag and r.name == str(ref)), None)
        if owner is None:
            raise NotFound("reference does not exist")
        add(owner, str(ref))
    selection = Selection()
    for image, tags in chosen.values():
        selection.images.append(image)
        if tags:
            selection.tags += tags
        else:
            selection.unnamed.append(image.records[0].name)
    return selection


def _stream(text: str) -> dict[str, Any]:
    return {"stream": text}


class ImageArchives:
    def __init__(self, runtime: ArchiveRuntime, images: ImageService, events: EventBus) -> None:
        self._runtime = runtime
        self._images = images
        self._events = events

    @asynccontextmanager
    async def save(self, terms: list[str], platform: str | None = None) -> AsyncIterator[AsyncIterator[bytes]]:
        """The archive's bytes; unknown names fail before the first byte. `save` events follow a whole archive."""
        if not terms:
            raise InvalidArgument("no image name given")
        images = await self._images.images()
        selection = select(images, terms)
        # dockerd writes the Parent of a committed image saved beside it; its load, and ours, keep it.
        parents = {image.id: parent for image in selection.images if (parent := self._images.parent_of(image, images))}
        async with self._runtime.export_images(selection.tags, unnamed=selection.unnamed, platform=platform,
                                               parents=parents) as chunks:

            async def body() -> AsyncIterator[bytes]:
                async for chunk in chunks:
                    yield chunk
                for image in selection.images:
                    self._events.image("save", image.id, image.id, image.labels)

            yield body()

    async def drop_leftover_leases(self, started: float) -> list[str]:
        """The leases of the loads, imports and builds an engine process before this one left unfinished."""
        return await drop_leftover_leases(self._runtime, started)

    async def load(self, data: AsyncIterable[bytes], quiet: bool, platform: str | None = None) -> list[dict[str, Any]]:
        """Import the archive and name its images; dockerd's messages for the stream.

        With `platform`, images for other platforms are left out, as dockerd does."""
        lease = str((await self._runtime.create_lease(new_lease_id(), expire_after=_LEASE_EXPIRY))["id"])
        try:
            stored = set() if quiet else {c.digest for c in await self._runtime.content()}
            imported = await self._runtime.import_images(data, records=False, lease=lease, platform=platform)
            if platform and not imported:
                raise InvalidArgument(f"the archive holds no image for platform {platform}: nothing was loaded")
            messages = [] if quiet else _layer_progress(imported, stored)
            return messages + await self._name(imported)
        finally:
            await self._runtime.remove_lease(lease)

    async def _name(self, imported: list[ImportedImage]) -> list[dict[str, Any]]:
        owners = {r.name: (image.id, r.target) for image in await self._images.images() for r in image.records}
        messages: list[dict[str, Any]] = []
        ids = ""
        tagged = 0
        for item in imported:
            target = item.target.model_dump()
            ids += f"Loaded image ID: {item.config}\n"
            # dockerd counts the names of the last image only: an archive whose last image has none lists IDs.
            tagged = 0
            for name in item.names:
                previous = owners.get(name)
                if previous is not None and previous[0] != item.config:
                    messages.append(_stream(f"The image {familiar(name)} already exists, renaming the old one "
                                            f"with ID {previous[0]} to empty string\n"))
                if previous is None or previous[0] != item.config:
                    await self._runtime.put_image(name, target, {TAGGED_LABEL: "true"})
                    owners[name] = (item.config, target)
                    if previous is not None:
                        await self._images.keep_if_orphaned(previous[0], previous[1])
                messages.append(_stream(f"Loaded image: {familiar(name)}\n"))
                tagged += 1
            if not item.names and not any(owner[0] == item.config for owner in owners.values()):
                await self._runtime.put_image(DANGLING_PREFIX + item.target.digest, target)
                owners[DANGLING_PREFIX + item.target.digest] = (item.config, target)
        if tagged == 0:
            messages.append(_stream(ids))
        images = {image.id: image for image in await self._images.images()}
        for item in imported:
            # dockerd records the Parent its archives give, when that image is here (in the archive or before).
            if item.parent and item.config in images and item.parent in images:
                await self._images.record_parent(images[item.config], images[item.parent])
            self._events.image("load", item.config, item.config,
                               images[item.config].labels if item.config in images else {})
        return messages


def _layer_progress(imported: list[ImportedImage], stored: set[str]) -> list[dict[str, Any]]:
    """dockerd's "Loading layer" progress: one finished bar per layer blob, since the import answers at its end;
    none for a layer that was `stored` before (dockerd loads only the layers it lacks)."""
    out = []
    for item in imported:
        for layer in item.layers:
            if layer.digest in stored:
                continue
            stored.add(layer.digest)
            out.append({"status": "Loading layer", "progressDetail": {"current": layer.size, "total": layer.size},
                        "progress": progress_bar(layer.size, layer.size), "id": layer.digest[7:19]})
    return out
