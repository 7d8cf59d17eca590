from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from runtime import errors
from runtime.api.routing import Router, Stream
from runtime.api.streams import ndjson, progress_lines
from runtime.images.config import resolve as resolve_image
from runtime.metadata.images import Image
from runtime.oci import Descriptor
from runtime.services import Services
from runtime.transfer.describe import RemoteDescription, describe
from runtime.transfer.progress import PullProgress
from runtime.transfer.search import SearchResults, search
from runtime.transfer.unpack_image import Unpacked, unpack_image
from runtime.transfer.pull import PullOptions
from runtime.transfer.registry import Credentials, HostsOverride

router = Router("/images", tags=("images",))


class ImageCreate(BaseModel):
    name: str
    target: Descriptor
    labels: dict[str, str] = Field(default_factory=dict)


class PullRequest(BaseModel):
    ref: str
    options: PullOptions = Field(default_factory=PullOptions)
    plain_http: bool = False
    hosts: HostsOverride = Field(default_factory=HostsOverride)
    credentials: Credentials | None = None


class DescribeRequest(BaseModel):
    ref: str
    plain_http: bool = False
    hosts: HostsOverride = Field(default_factory=HostsOverride)
    credentials: Credentials | None = None


class UnpackRequest(BaseModel):
    snapshotter: str | None = None


class SearchRequest(BaseModel):
    term: str
    limit: int = Field(default=25, ge=1, le=100)
    plain_http: bool = False
    hosts: HostsOverride = Field(default_factory=HostsOverride)
    credentials: Credentials | None = None


@router.get("")
async def list_images(s: Services) -> list[Image]:
    return await s.images.list()


@router.post("", status=201, writes=True)
async def create_image(body: ImageCreate, s: Services) -> Image:
    await s.content.info(body.target.digest)
    return await s.images.put(Image(name=body.name, target=body.target, labels=body.labels))


@router.post("/pull", writes=True)
async def pull(body: PullRequest, s: Services) -> Stream:
    """Stream progress as NDJSON; the last line is {"status": "complete"} or {"error": ...}.

    Errors found before any byte moves (a malformed reference) are a plain 4xx;
    later ones arrive as the stream's last line, since the status is already sent.
    """
    remote = await s.remotes.remote(body.ref, plain_http=body.plain_http, hosts=body.hosts,
                                    credentials=body.credentials)
    progress = PullProgress()
    task = asyncio.create_task(s.puller.pull(remote, body.options, progress))

    return ndjson(progress_lines(task, progress.events, "pull",
                                 lambda image: {"status": "complete", "image": image.model_dump(mode="json")}))


@router.post("/describe")
async def describe_remote(body: DescribeRequest, s: Services) -> RemoteDescription:
    """What `ref` names in its registry, read without pulling: its descriptor and the platforms it offers."""
    remote = await s.remotes.remote(body.ref, plain_http=body.plain_http, hosts=body.hosts,
                                    credentials=body.credentials)
    return await describe(remote)


class RemoteTags(BaseModel):
    tags: list[str]


@router.post("/tags")
async def remote_tags(body: DescribeRequest, s: Services) -> RemoteTags:
    """Every tag of the repository `ref` names, as its registry lists them (`docker pull --all-tags`)."""
    remote = await s.remotes.remote(body.ref, plain_http=body.plain_http, hosts=body.hosts,
                                    credentials=body.credentials)
    return RemoteTags(tags=await remote.tags())


@router.post("/search")
async def search_index(body: SearchRequest, s: Services) -> SearchResults:
    """The registry index's answer to a search term (the v1 search API, which Docker Hub has)."""
    return await search(s.remotes, body.term, body.limit, plain_http=body.plain_http, hosts=body.hosts,
                        credentials=body.credentials)


@router.post("/{name:path}/unpack", writes=True)
async def unpack(name: str, s: Services, body: UnpackRequest | None = None) -> Unpacked:
    """Unpack an image whose content is all present into snapshots by chainID (idempotent)."""
    snapshotter = (body.snapshotter if body else None) or s.default_snapshotter
    service = s.snapshots.get(snapshotter)
    if service is None:
        raise errors.InvalidArgument(f"snapshotter {snapshotter!r} is not loaded")
    return await unpack_image(s.content, service, s.leases, await s.images.find(name))


# Declared before GET /{name:path}, which would otherwise take ".../config" as part of the name.
@router.get("/{name:path}/config")
async def get_image_config(name: str, s: Services) -> dict[str, Any]:
    """The image's config blob (of this platform's manifest, for an index).

    The runtime takes a container's process as given, as containerd does: a client that wants the
    image's Entrypoint, Cmd, Env, WorkingDir or User reads them here and builds the process itself.
    Names resolve as a container's create resolves them (a short name finds its normalised form).
    """
    image = await s.images.find(name)
    return (await resolve_image(s.content, image.target)).config


@router.get("/{name:path}")
async def get_image(name: str, s: Services) -> Image:
    return await s.images.get(name)


@router.delete("/{name:path}")
async def delete_image(name: str, s: Services, sync: bool = True) -> None:
    await s.images.delete(name)
    if sync:
        await s.collector.collect()
