"""`docker commit`: a container's filesystem changes become a layer on its image, its config the new image's.

As dockerd does: the config is the container's, with the request's config and `--change` lines
over it; the history entry is the container's command; a running container is frozen while its
changes are read (unless the client says pause=false) so the layer is one moment's state.
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from engine.builder.dockerfile.changes import apply_changes
from engine.containers.state import Status
from engine.containers.store import Container
from engine.events import EventBus
from engine.images.compose import NewLayer, child_config, now
from engine.images.make_options import CommitOptions
from engine.images.store import ImageService
from engine.images.writer import ImageWriter
from engine.errors import NotFound
from runtime.client import FailedPrecondition, NotFound as RuntimeNotFound
from runtime.client.diff import DiffAPI
from runtime.client.records import Container as RuntimeContainer
from runtime.client.reference import familiar


class CommitRuntime(DiffAPI, Protocol):
    async def container(self, container_id: str, namespace: str | None = None) -> RuntimeContainer: ...

    async def pause_task(self, task_id: str, namespace: str | None = None) -> None: ...

    async def resume_task(self, task_id: str, namespace: str | None = None) -> None: ...


class Committer:
    def __init__(self, runtime: CommitRuntime, writer: ImageWriter, images: ImageService, events: EventBus) -> None:
        self.runtime = runtime
        self.writer = writer
        self.images = images
        self.events = events

    async def commit(self, c: Container, options: CommitOptions) -> str:
        """The new image's ID."""
        # Without a config in the request, dockerd starts from the container's own, hostname and all.
        base = options.config if options.config is not None else c.config
        config = merge(apply_changes(dict(base), list(options.changes)), c.config)
        try:
            parent = (await self.images.get(c.image_id)).image
        except NotFound:
            parent = None  # a container outlives an image removed with force: commit on what it has
        record = await self.runtime.container(c.id)
        snapshotter = record.snapshotter
        async with self.writer.lease() as lease:
            async with self._frozen(c, options.pause):
                diff = await self.runtime.compare(snapshotter, record.snapshot_key, lease=lease)
            layer = NewLayer(diff.descriptor.model_dump(exclude_none=True), diff.diff_id)
            doc = child_config(parent.config if parent is not None else None, config, layer=layer, created=now(),
                               created_by=" ".join(c.config.get("Cmd") or []), author=options.author,
                               comment=options.comment, container=c.id, container_config=c.config)
            written = await self.writer.write(parent, doc, layer, lease=lease, snapshotter=snapshotter)
            if parent is not None:
                await self.images.record_parent(written.image, parent)
            name = await self.writer.name(written, options.repo, options.tag) if options.repo else ""
        self.events.container(c, "commit", comment=options.comment, imageID=written.id,
                              imageRef=familiar(name) if name else "")
        return written.id

    @contextlib.asynccontextmanager
    async def _frozen(self, c: Container, pause: bool) -> AsyncIterator[None]:
        if not pause or c.state.status != Status.RUNNING:
            yield
            return
        try:
            await self.runtime.pause_task(c.id)
        except (RuntimeNotFound, FailedPrecondition):
            yield  # it stopped meanwhile (its exit not handled yet): nothing to freeze
            return
        # Told as dockerd tells them, though the container's state never shows it paused.
        self.events.container(c, "pause")
        try:
            yield
        finally:
            with contextlib.suppress(RuntimeNotFound, FailedPrecondition):
                await self.runtime.resume_task(c.id)
                self.events.container(c, "unpause")


def merge(user: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """dockerd's commit merge: the container fills what the request (config and changes) leaves unset.

    Only these fields carry over; the rest of the container's config (hostname, tty, attach flags...)
    is the container's, not the image's. An Entrypoint given by the request drops the container's Cmd.
    """
    out = dict(user)
    for key in ("User", "WorkingDir", "StopSignal"):
        if not out.get(key) and container.get(key):
            out[key] = container[key]
    ports = dict(out.get("ExposedPorts") or {})
    out_ports = {**(container.get("ExposedPorts") or {}), **ports} if ports else container.get("ExposedPorts")
    if out_ports:
        out["ExposedPorts"] = out_ports
    env = list(out.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    env += [e for e in container.get("Env") or [] if e.split("=", 1)[0] not in keys]
    if env:
        out["Env"] = env
    out["Labels"] = {**(container.get("Labels") or {}), **(out.get("Labels") or {})}
    if not out.get("Entrypoint"):
        if not out.get("Cmd") and container.get("Cmd"):
            out["Cmd"] = container["Cmd"]
            if "ArgsEscaped" in container:
                out["ArgsEscaped"] = container["ArgsEscaped"]
        if out.get("Entrypoint") is None and container.get("Entrypoint") is not None:
            out["Entrypoint"] = container["Entrypoint"]
    health = container.get("Healthcheck")
    if health:
        out["Healthcheck"] = {**health, **{k: v for k, v in (out.get("Healthcheck") or {}).items() if v}}
    volumes = {**(container.get("Volumes") or {}), **(out.get("Volumes") or {})}
    if volumes:
        out["Volumes"] = volumes
    return out
