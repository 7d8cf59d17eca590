"""POST /images/create?fromImage=…: a runtime pull, reported as dockerd's progress messages."""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from engine import errors
from engine.errors import Internal, InvalidArgument
from engine.humanize import human_size
from engine.images import platforms
from engine.images.lookup import NoSuchImage
from engine.images.model import short_id
from engine.images.store import ImageService, Registries
from runtime.client import NotFound, RuntimeAPI, RuntimeError_, Unauthenticated, Unavailable
from runtime.client.reference import Reference, familiar, parse

_BAR_WIDTH = 50
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class RegistryAuth(BaseModel):
    """The X-Registry-Auth header's JSON (base64url, padding optional)."""

    model_config = ConfigDict(extra="ignore")

    username: str = ""
    password: str = ""
    identitytoken: str = ""
    serveraddress: str = ""

    @classmethod
    def from_header(cls, header: str | None) -> RegistryAuth | None:
        # dockerd treats an undecodable header as no credentials rather than failing the pull.
        if not header:
            return None
        text = header.strip().replace("+", "-").replace("/", "_")
        try:
            return cls.model_validate(json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))
        except (binascii.Error, ValueError, ValidationError, RecursionError):
            return None

    def credentials(self) -> dict[str, str] | None:
        if not (self.username or self.password or self.identitytoken):
            return None
        creds = {"username": self.username, "password": self.password}
        if self.identitytoken:
            creds["identity_token"] = self.identitytoken
        return creds


def all_tags(from_image: str, tag: str) -> bool:
    """The API's rule: a repository named with neither tag nor digest, and no `tag`, pulls every tag."""
    name = from_image.rsplit("/", 1)[-1]
    return bool(from_image) and not tag and "@" not in from_image and ":" not in name


def pull_reference(from_image: str, tag: str) -> Reference:
    """fromImage plus tag (a tag or a digest) as one normalised reference; no tag means latest."""
    if not from_image:
        raise InvalidArgument("fromImage or fromSrc is required")
    ref = parse(from_image)
    if not tag:
        return ref
    # The explicit tag (or digest) replaces whatever fromImage carried.
    return parse(f"{ref.name}@{tag}" if tag.startswith("sha256:") else f"{ref.name}:{tag}")


def progress_bar(current: int, total: int) -> str:
    filled = min(_BAR_WIDTH, _BAR_WIDTH * current // total) if total > 0 else 0
    bar = "=" * _BAR_WIDTH if filled >= _BAR_WIDTH else "=" * filled + ">" + " " * (_BAR_WIDTH - filled - 1)
    return f"[{bar}] {human_size(current):>8}/{human_size(total)}"


def _message(status: str, layer: str, current: int | None = None, total: int = 0) -> dict[str, Any]:
    if current is None:
        return {"status": status, "progressDetail": {}, "id": layer}
    return {"status": status, "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(current, total), "id": layer}


class LayerReporter:
    """Turns the runtime's per-blob states into Docker's per-layer messages.

    Docker announces a layer once ("Pulling fs layer", or "Already exists" when it
    is stored already and then says nothing more about it); manifests and
    configs are not layers and stay silent.
    """

    _SIMPLE: ClassVar[dict[str, str]] = {
        "waiting": "Waiting", "verifying": "Verifying Checksum", "downloaded": "Download complete",
        "done": "Pull complete",
    }

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._settled: set[str] = set()

    def messages(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event.get("kind") != "layer" or "digest" not in event:
            return []
        layer, status = short_id(event["digest"]), event.get("status")
        if layer in self._settled:
            return []
        out: list[dict[str, Any]] = []
        if layer not in self._seen:
            self._seen.add(layer)
            if status == "exists":
                self._settled.add(layer)
                return [_message("Already exists", layer)]
            out.append(_message("Pulling fs layer", layer))
        current, total = int(event.get("current") or 0), int(event.get("total") or 0)
        if status == "downloading":
            out.append(_message("Downloading", layer, current, total))
        elif status == "extracting":
            out.append(_message("Extracting", layer, current, total))
        elif status == "exists":  # a download another pull was doing finished
            out.append(_message("Download complete", layer))
        elif status in self._SIMPLE:
            out.append(_message(self._SIMPLE[status], layer))
        return out


async def hub_detail(runtime: RuntimeAPI, registries: Registries, ref: Reference,
                     credentials: dict[str, str] | None, detail: str) -> str:
    """Docker Hub tells a repository it does not have from a tag it lacks, where a mirror standing in for it
    (distribution among them) says "manifest unknown" of both: a docker.io name asks the repository's tag list."""
    if ref.domain != "docker.io" or "name unknown" in detail:
        return detail
    try:
        await runtime.remote_tags(ref.name, mirrors=registries.mirrors, insecure=registries.insecure,
                                  credentials=credentials)
    except NotFound as e:
        return e.message
    except RuntimeError_:
        pass
    return detail


def not_found(ref: Reference, detail: str) -> errors.NotFound:
    """dockerd's words for a name the registries do not have (distribution's translatePullError).

    Docker Hub answers "denied" for a repository that does not exist, and so does a mirror of it that lacks the
    name once the hub itself is out of reach; other registries say which of repository or tag is unknown.
    """
    if "name unknown" not in detail:
        return errors.NotFound(f"manifest for {familiar(ref)} not found: manifest unknown: manifest unknown")
    if ref.domain == "docker.io":
        return errors.NotFound(f"pull access denied for {ref.familiar_name}, repository does not exist or may "
                               "require 'docker login': denied: requested access to the resource is denied")
    return errors.NotFound(f"repository {ref.familiar_name} not found: name unknown: repository name not known to "
                           "registry")


async def pull(images: ImageService, ref: Reference, *, platform: str | None,
               auth: RegistryAuth | None) -> AsyncGenerator[dict[str, Any], None]:
    """Docker's pull messages. Failures up to the registry's answer raise before the first
    message (the caller still can answer with a status); later ones raise mid-stream."""
    name = str(ref)
    try:
        before = await images.runtime.image(name)
    except NotFound:
        before = None
    previous = None
    if before is not None:
        try:
            previous = (await images.get(name)).image.id
        except NoSuchImage:
            pass
    events = images.runtime.pull(name, platform=platform or None, mirrors=images.registries.mirrors,
                                 insecure=images.registries.insecure,
                                 credentials=auth.credentials() if auth else None,
                                 max_concurrent_downloads=images.registries.max_downloads)
    try:
        try:
            resolved = await anext(events)
        except NotFound as e:
            detail = await hub_detail(images.runtime, images.registries, ref, auth.credentials() if auth else None,
                                      e.message)
            raise not_found(ref, detail) from None
        except (Unauthenticated, Unavailable) as e:
            # dockerd's pull answers 500 to these: a 401 would make the docker CLI prompt for a login (and wait
            # on a script's stdin), a 503 is no status dockerd gives a pull.
            raise errors.EngineError(e.message) from None
        digest = resolved.get("digest", "")
        single_platform = resolved.get("mediaType") not in _INDEX_TYPES
        # As dockerd: an image already here is pulled without a word of its layers, and a digest its repository
        # already has (from a pull of one of its tags) is up to date.
        stored = [r for image in await images.images() for r in image.records if r.digest == digest]
        up_to_date = (before is not None and before.target.digest == digest) or (
            ref.digest is not None and any(r.ref is not None and r.ref.name == ref.name for r in stored))
        # dockerd 20.10 names a pull by digest by its whole reference, a pull by tag by its tag.
        yield {"status": f"Pulling from {ref.path}", "id": ref.tag if ref.digest is None else str(ref)}
        reporter = LayerReporter()
        async for event in events:
            if event.get("status") == "complete":
                break
            if not up_to_date and not stored:
                for message in reporter.messages(event):
                    yield message
        else:
            raise Internal(f"the runtime's pull of {name} ended without completing")
    finally:
        await events.aclose()
    if previous is not None and before is not None and not up_to_date:
        # The name moved to another image: the one it left keeps existing, untagged, as in Docker.
        await images.keep_if_orphaned(previous, before.target.model_dump())
    images.events.image_pulled(name)
    yield {"status": f"Digest: {digest}"}
    verdict = "Image is up to date for" if up_to_date else "Downloaded newer image for"
    yield {"status": f"Status: {verdict} {familiar(ref)}"}
    if platform and single_platform:
        mismatch = await _platform_mismatch(images, ref, platforms.parse(platform))
        if mismatch:
            yield {"status": f"WARNING: {mismatch}"}


async def pull_all(images: ImageService, repo: Reference, *, platform: str | None,
                   auth: RegistryAuth | None) -> AsyncGenerator[dict[str, Any], None]:
    """`docker pull --all-tags`: every tag the registry lists, each pulled as on its own, with one status for
    the repository at the end, as dockerd says it."""
    try:
        tags = await images.runtime.remote_tags(repo.name, mirrors=images.registries.mirrors,
                                                insecure=images.registries.insecure,
                                                credentials=auth.credentials() if auth else None)
    except NotFound as e:
        raise not_found(repo, e.message) from None
    if not tags:
        raise errors.NotFound(f"no tags of {repo.familiar_name} to pull")
    newer = False
    for tag in tags:
        async for message in pull(images, parse(f"{repo.name}:{tag}"), platform=platform, auth=auth):
            status = str(message.get("status") or "")
            if status.startswith("Status: "):
                newer = newer or status.startswith("Status: Downloaded newer image")
                continue
            yield message
    verdict = "Downloaded newer image for" if newer else "Image is up to date for"
    yield {"status": f"Status: {verdict} {repo.familiar_name}"}


async def _platform_mismatch(images: ImageService, ref: Reference, wanted: platforms.Platform) -> str | None:
    """dockerd pulls a single-platform image whatever platform was asked for (older clients relied on it) and
    only warns when the image's own config names another one."""
    try:
        actual = platforms.of_image((await images.get(str(ref))).image.config)
    except NoSuchImage:
        return None
    if wanted.matches(actual):
        return None
    return (f"image with reference {ref} was found but does not match the specified platform: "
            f"wanted {wanted}, actual: {actual}")
