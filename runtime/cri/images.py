"""CRI ImageService: pulls, lists, inspects and removes images in the CRI namespace.

Images share the runtime's content store, snapshotters and registry settings (mirrors, insecure
hosts) with everything else; only the namespace keeps them apart from the engine's. An image is
known by its config digest (the CRI's image id), its tags (RepoTags) and its `name@digest`
references (RepoDigests), each a record of the image store pointing at one target, as in containerd.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

from cri_api.v1 import api_pb2 as cri
from cri_api.v1 import api_pb2_grpc

from runtime.cri.errors import Context, rpc
from runtime.cri.scope import in_namespace
from runtime.errors import InvalidArgument, NotFound
from runtime.metadata.content import ContentService
from runtime.metadata.gc import Collector
from runtime.metadata.images import Image, ImageStore
from runtime.oci import INDEX_TYPES
from runtime.reference import parse as parse_reference
from runtime.remotes.auth import Credentials
from runtime.remotes.platforms import select_manifest
from runtime.snapshots.fsutil import disk_usage
from runtime.transfer.progress import PullProgress
from runtime.transfer.pull import Puller, PullOptions
from runtime.transfer.registry import RemoteFactory


@dataclass
class ImageFacts:
    id: str  # the config digest
    manifest_digest: str
    size: int
    config: dict[str, Any]


async def image_facts(content: ContentService, image: Image) -> ImageFacts:
    manifest_digest = image.target.digest
    if image.target.mediaType in INDEX_TYPES:
        manifest_digest = select_manifest(await content.read_document(manifest_digest, "index")).digest
    manifest = await content.read_document(manifest_digest, "manifest")
    config_digest = (manifest.get("config") or {}).get("digest")
    if not config_digest:
        raise InvalidArgument(f"manifest {manifest_digest} has no config")
    config = await content.read_document(config_digest, "image config")
    size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers") or [])
    size += int((manifest.get("config") or {}).get("size", 0))
    return ImageFacts(config_digest, image.target.digest, size, config)


def normalise(ref: str) -> str:
    return str(parse_reference(ref))


def _credentials(auth: cri.AuthConfig) -> Credentials | None:
    if auth.identity_token:
        return Credentials(username=auth.username, identity_token=auth.identity_token)
    username, password = auth.username, auth.password
    if auth.auth and not username:
        try:
            username, _, password = base64.b64decode(auth.auth).decode().partition(":")
        except (ValueError, binascii.Error):
            raise InvalidArgument("auth: not base64 of user:password") from None
    if auth.registry_token:
        return Credentials(identity_token=auth.registry_token)
    if username or password:
        return Credentials(username=username, password=password)
    return None


class ImageCatalog:
    """The CRI namespace's images grouped by id: what ListImages, ImageStatus and RemoveImage read."""

    def __init__(self, namespace: str, images: ImageStore, content: ContentService, puller: Puller,
                 remotes: RemoteFactory, collector: Collector) -> None:
        self.namespace = namespace
        self._images = images
        self._content = content
        self._puller = puller
        self._remotes = remotes
        self._collector = collector

    async def groups(self) -> dict[str, tuple[ImageFacts, list[Image]]]:
        with in_namespace(self.namespace):
            records = await self._images.list()
            out: dict[str, tuple[ImageFacts, list[Image]]] = {}
            for image in records:
                try:
                    facts = await image_facts(self._content, image)
                except (NotFound, InvalidArgument):
                    continue  # a record whose content is gone or not an image: nothing a kubelet can run
                out.setdefault(facts.id, (facts, []))[1].append(image)
            return out

    async def lookup(self, ref: str) -> tuple[ImageFacts, list[Image]] | None:
        """By reference (the common case: one record read), else by image id with or without `sha256:`,
        or a unique prefix of it (every record's config read)."""
        if not ref:
            raise InvalidArgument("image reference is empty")
        by_name = await self._by_name(ref)
        if by_name is not None:
            return by_name
        groups = await self.groups()
        wanted = ref if ref.startswith("sha256:") else f"sha256:{ref}"
        if wanted in groups:
            return groups[wanted]
        hits = [g for key, g in groups.items() if len(ref) >= 3 and key.startswith(wanted)]
        return hits[0] if len(hits) == 1 else None

    async def _by_name(self, ref: str) -> tuple[ImageFacts, list[Image]] | None:
        with in_namespace(self.namespace):
            try:
                image = await self._images.find(ref)
            except (NotFound, InvalidArgument):
                return None
            try:
                facts = await image_facts(self._content, image)
            except (NotFound, InvalidArgument):
                return None
            # Names of one image share its target: no other record's documents need reading.
            names = [i for i in await self._images.list() if i.target.digest == image.target.digest]
            return facts, names

    async def pull(self, ref: str, credentials: Credentials | None) -> ImageFacts:
        name = normalise(ref)
        with in_namespace(self.namespace):
            remote = await self._remotes.remote(name, credentials=credentials)
            image = await self._puller.pull(remote, PullOptions(), PullProgress())
            parsed = parse_reference(image.name)
            digest_name = f"{parsed.name}@{image.target.digest}"
            if digest_name != image.name:
                await self._images.put(Image(name=digest_name, target=image.target, labels=image.labels))
            return await image_facts(self._content, image)

    async def remove(self, ref: str) -> None:
        found = await self.lookup(ref)
        if found is None:
            return
        with in_namespace(self.namespace):
            for image in found[1]:
                try:
                    await self._images.delete(image.name)
                except NotFound:
                    pass
            await self._collector.collect()


def to_message(facts: ImageFacts, images: list[Image]) -> cri.Image:
    tags = sorted(i.name for i in images if "@" not in i.name)
    digests = sorted(i.name for i in images if "@" in i.name)
    user = str((facts.config.get("config") or {}).get("User") or "")
    msg = cri.Image(id=facts.id, repo_tags=tags, repo_digests=digests, size=facts.size, pinned=False)
    uid, _, _ = user.partition(":")
    if uid.isdigit():
        msg.uid.value = int(uid)
    elif uid:
        msg.username = uid
    msg.spec.image = facts.id
    return msg


class ImageServicer(api_pb2_grpc.ImageServiceServicer):
    def __init__(self, catalog: ImageCatalog, snapshot_roots: list[str]) -> None:
        self._catalog = catalog
        self._roots = snapshot_roots
        self._pulls: dict[tuple[str, Credentials | None], asyncio.Task[ImageFacts]] = {}

    @rpc
    async def ListImages(self, request: cri.ListImagesRequest, context: Context
                         ) -> cri.ListImagesResponse:
        wanted = request.filter.image.image if request.HasField("filter") else ""
        if wanted:
            found = await self._catalog.lookup(wanted)
            return cri.ListImagesResponse(images=[to_message(*found)] if found else [])
        groups = await self._catalog.groups()
        return cri.ListImagesResponse(images=[to_message(f, i) for f, i in groups.values()])

    @rpc
    async def ImageStatus(self, request: cri.ImageStatusRequest, context: Context
                          ) -> cri.ImageStatusResponse:
        found = await self._catalog.lookup(request.image.image)
        if found is None:
            return cri.ImageStatusResponse()
        response = cri.ImageStatusResponse(image=to_message(*found))
        if request.verbose:
            facts = found[0]
            response.info["info"] = json.dumps({"id": facts.id, "manifestDigest": facts.manifest_digest,
                                                "imageSpec": facts.config})
        return response

    @rpc
    async def PullImage(self, request: cri.PullImageRequest, context: Context
                        ) -> cri.PullImageResponse:
        ref = request.image.image
        credentials = _credentials(request.auth) if request.HasField("auth") else None
        # The kubelet may ask for one image from several pods at once: one pull serves them all.
        key = (normalise(ref), credentials)
        task = self._pulls.get(key)
        if task is None:
            task = asyncio.ensure_future(self._catalog.pull(ref, credentials))
            self._pulls[key] = task
            task.add_done_callback(lambda _t: self._pulls.pop(key, None))
        facts = await asyncio.shield(task)
        return cri.PullImageResponse(image_ref=facts.id)

    @rpc
    async def RemoveImage(self, request: cri.RemoveImageRequest, context: Context
                          ) -> cri.RemoveImageResponse:
        await self._catalog.remove(request.image.image)
        return cri.RemoveImageResponse()

    @rpc
    async def ImageFsInfo(self, request: cri.ImageFsInfoRequest, context: Context
                          ) -> cri.ImageFsInfoResponse:
        usages = []
        for root in self._roots:
            usage = await asyncio.to_thread(disk_usage, root)
            u = cri.FilesystemUsage(timestamp=time.time_ns())
            u.fs_id.mountpoint = root
            u.used_bytes.value = usage.size
            u.inodes_used.value = usage.inodes
            usages.append(u)
        return cri.ImageFsInfoResponse(image_filesystems=usages, container_filesystems=usages)
