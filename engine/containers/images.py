"""What a container create needs to know about its image, through the engine's image service.

The runtime keeps images under normalised names (docker.io/library/busybox:latest);
clients write familiar ones (busybox), or an image ID (prefix).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidArgument, NotFound
from engine.images import platforms
from engine.images.lookup import find
from engine.images.platforms import Platform
from engine.images.store import ImageService
from runtime.client.reference import familiar, parse


@dataclass(frozen=True)
class Image:
    ref: str  # the runtime's name for it
    id: str  # sha256:<config digest>
    config: dict[str, Any]  # the image config's "config" object (Cmd, Env, ...)
    platform: Platform = field(default_factory=platforms.host)


def normalise(ref: str) -> tuple[str, str]:
    """(the runtime's full name, Docker's familiar form for messages): busybox -> docker.io/library/busybox:latest."""
    r = parse(ref)
    return str(r), familiar(r)


class Images:
    """Container create's view of the image service: the runtime name, ID and run config of an image."""

    def __init__(self, service: ImageService) -> None:
        self._service = service

    async def resolve(self, ref: str) -> Image:
        """By reference, name@digest, ID or ID prefix; NotFound with Docker's message."""
        if not ref:
            raise InvalidArgument("No image was specified: set Config.Image")
        match = await self._service.get(ref)
        return Image(ref=match.source.name, id=match.image.id, config=match.image.config.get("config") or {},
                     platform=platforms.of_image(match.image.config))

    async def ids_of(self, names: set[str]) -> dict[str, str | None]:
        """The image each of `names` (as clients wrote them) names now; None for a name gone. One listing for all."""
        if not names:
            return {}
        images = await self._service.images()
        out: dict[str, str | None] = {}
        for name in names:
            try:
                out[name] = find(images, name).image.id
            except (NotFound, InvalidArgument):
                out[name] = None
        return out
