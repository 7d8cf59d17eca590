"""Finding an image the ways Docker users name one: reference, name@digest, ID or unique ID prefix."""
from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidArgument as EngineInvalidArgument
from engine.errors import NotFound
from engine.images.model import LocalImage, Record
from runtime.client import InvalidArgument
from runtime.client.reference import Reference, familiar, parse

_FULL_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_ID_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]+)")


@dataclass(frozen=True)
class Match:
    image: LocalImage
    record: Record | None  # the name that matched; None when found by ID

    @property
    def source(self) -> Record:
        """The record to copy when tagging: the matched name, else the image's first."""
        return self.record or self.image.records[0]


class NoSuchImage(NotFound):
    def __init__(self, term: str) -> None:
        super().__init__(f"No such image: {display_name(term)}")
        self.term = term


class BadReference(EngineInvalidArgument):
    """A term that is neither a reference nor an image ID."""


def display_name(term: str) -> str:
    """The user's term as Docker echoes it in errors: references normalised with their tag."""
    try:
        return familiar(parse(term))
    except InvalidArgument:
        return term


def _by_reference(images: list[LocalImage], ref: Reference) -> Match | None:
    wanted = str(ref)
    for image in images:
        for record in image.named:
            if record.name == wanted:
                return Match(image, record)
    if ref.digest is None:
        return None
    # A repository digest names the image whatever tag it was pulled (or pushed) by; a mere `docker tag`
    # gives its repository no digest.
    for image in images:
        for record in image.named:
            assert record.ref is not None
            if (record.gives_digest and record.ref.name == ref.name
                    and ref.digest in (record.digest, image.manifest_digest)):
                return Match(image, record)
    return None


def find(images: list[LocalImage], term: str) -> Match:
    """Names win over ID prefixes, as in Docker: an image called `abc` shadows IDs starting with abc."""
    full = _FULL_ID.fullmatch(term)
    if full:
        for image in images:
            if image.id == "sha256:" + full.group(1):
                return Match(image, None)
        raise NoSuchImage(term)
    prefix = _ID_PREFIX.fullmatch(term)
    try:
        ref: Reference | None = parse(term)
    except InvalidArgument as e:
        if not prefix:
            # Not a name nor an ID: dockerd's 400, so that no client takes it for an image to pull.
            raise BadReference(e.message) from None
        ref = None
    if ref is not None:
        found = _by_reference(images, ref)
        if found is not None:
            return found
    if prefix:
        hits = [image for image in images if image.id.removeprefix("sha256:").startswith(prefix.group(1))]
        if len(hits) == 1:
            return Match(hits[0], None)
    raise NoSuchImage(term)
