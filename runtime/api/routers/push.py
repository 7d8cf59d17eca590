"""POST /images/push: a local image to a registry, progress as NDJSON (runtime/transfer/push.py)."""
from __future__ import annotations

import asyncio
from pydantic import BaseModel, Field

from runtime import errors
from runtime.api.routing import Router, Stream
from runtime.api.streams import ndjson, progress_lines
from runtime.services import Services
from runtime.transfer.progress import PullProgress
from runtime.transfer.push import Pusher
from runtime.transfer.registry import Credentials, HostsOverride

router = Router("/images", tags=("images",))


class PushRequest(BaseModel):
    name: str  # the local image
    ref: str | None = None  # where it goes; its own name by default
    plain_http: bool = False
    # Only `insecure`: mirrors serve pulls, a push goes to the registry its reference names (mirrors are a 400).
    hosts: HostsOverride = Field(default_factory=HostsOverride)
    credentials: Credentials | None = None
    platform: str | None = None  # push only this platform's manifest of an index ("os/arch[/variant]")
    max_concurrent_uploads: int = Field(default=3, ge=1)  # the engine's max-concurrent-uploads


@router.post("/push")
async def push(body: PushRequest, s: Services) -> Stream:
    """Stream progress as NDJSON: `{"status": "pushing", ...}`, then per blob `waiting`, `checking`, `exists`,
    `mounted` (with `from`), `uploading` (`current` of `total`) and `done`, per manifest `done`; the last line is
    `{"status": "complete", "digest", "size", "mediaType"}` or an error.

    An image that is not here is a plain 404 before the stream starts.
    """
    if body.hosts.mirrors:
        raise errors.InvalidArgument("hosts.mirrors: mirrors serve pulls only; "
                                     "a push goes to the registry its reference names")
    await s.images.find(body.name)
    progress = PullProgress()
    task = asyncio.create_task(Pusher(s.content, s.images, s.remotes, max_concurrent=body.max_concurrent_uploads).push(
        body.name, body.ref, progress, plain_http=body.plain_http, hosts=body.hosts,
        credentials=body.credentials, platform=body.platform))

    return ndjson(progress_lines(task, progress.events, "push",
                                 lambda pushed: {"status": "complete", **pushed.model_dump(mode="json")}))
