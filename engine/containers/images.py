"""What a container create needs to know about its image, through the engine's image service.

The runtime keeps images under normalised names (docker.io/library/busybox:latest);
clients write familiar ones (busybox), or an image ID (prefix).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidArgument, NotFound
from engine.events import CONTAINER, IMAGE, Event, EventBus
from engine.images import platforms
from engine.images.lookup import find
from engine.images.model import chain_ids
from engine.images.platforms import Platform
from engine.images.store import ImageService
from runtime.client.reference import familiar, parse


@dataclass(frozen=True)
class Image:
    ref: str  # the runtime's name for it
    id: str  # sha256:<config digest>
    config: dict[str, Any]  # the image config's "config" object (Cmd, Env, ...)
    platform: Platform = field(default_factory=platforms.host)
    chain_id: str = ""  # its top layer's snapshot ("" for an image of no layers)


def normalise(ref: str) -> tuple[str, str]:
    """(the runtime's full name, Docker's familiar form for messages): busybox -> docker.io/library/busybox:latest."""
    r = parse(ref)
    return str(r), familiar(r)


class Images:
    """Container create's view of the image service: the runtime name, ID and run config of an image."""

    def __init__(self, service: ImageService, events: EventBus | None = None) -> None:
        self._service = service
        # What each name a container was created by names now (for `docker ps`), kept until an image event
        # (a pull, tag, untag, delete, load, import, commit) may have moved a name: listing every image on each
        # list would halve the list's throughput.
        self._ids: dict[str, str | None] = {}
        self._generation = 0
        if events is not None:
            events.observe(self._saw)

    def _saw(self, ev: Event) -> None:
        if ev.type == IMAGE or (ev.type == CONTAINER and ev.action == "commit"):
            self._generation += 1
            self._ids = {}

    async def resolve(self, ref: str) -> Image:
        """By reference, name@digest, ID or ID prefix; NotFound with Docker's message."""
        if not ref:
            raise InvalidArgument("No image was specified: set Config.Image")
        match = await self._service.get(ref)
        chains = chain_ids(match.image.diff_ids)
        return Image(ref=match.source.name, id=match.image.id, config=match.image.config.get("config") or {},
                     platform=platforms.of_image(match.image.config), chain_id=chains[-1] if chains else "")

    async def ids_of(self, names: set[str]) -> dict[str, str | None]:
        """The image each of `names` (as clients wrote them) names now; None for a name gone. One listing for all
        the names not known since the last image event."""
        known = {name: self._ids[name] for name in names if name in self._ids}
        missing = names - known.keys()
        if not missing:
            return known
        generation = self._generation
        images = await self._service.images()
        found: dict[str, str | None] = {}
        for name in missing:
            try:
                found[name] = find(images, name).image.id
            except (NotFound, InvalidArgument):
                found[name] = None
        if generation == self._generation:  # no image event while listing: what was found still holds
            self._ids.update(found)
        return {**known, **found}

    async def lineage(self, terms: list[str]) -> set[str]:
        """`ps --filter ancestor=`, as dockerd walks it: the IDs of the images the terms name now and of every
        image made from them; a term that names no image adds none."""
        images = await self._service.images()
        roots = set()
        for term in terms:
            try:
                roots.add(find(images, term).image.id)
            except (NotFound, InvalidArgument):
                pass
        return roots | {image.id for image in images
                        if any(a.id in roots for a in self._service.ancestry(image, images))}
