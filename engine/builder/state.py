"""A stage's state between steps, and how a step's result becomes the next image.

As in dockerd's classic builder every instruction ends in an image: its config is the stage's
Config so far, its history says what the step did, and it has a layer only when the step changed
files. Each is kept in the build cache under the step's key, so the same step on the same parent is
found again, even after a restart.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from engine.builder.cache import BuildCache
from engine.builder.dockerfile import StageScope
from engine.images.compose import NewLayer, child_config, now
from engine.images.model import LocalImage
from engine.images.writer import ImageWriter

NOP = "/bin/sh -c #(nop) "


@dataclass
class StageState:
    """Where a stage is: its current image (None: scratch, nothing yet) and the Config it carries."""

    index: int
    name: str
    scope: StageScope
    escape: str
    image: LocalImage | None = None
    config: dict[str, Any] = field(default_factory=dict)
    author: str = ""  # MAINTAINER
    cmd_set: bool = False  # a CMD was given in this stage: a later ENTRYPOINT keeps it
    platform: dict[str, str] | None = None

    @property
    def image_id(self) -> str:
        return self.image.id if self.image is not None else ""

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or ["/bin/sh", "-c"])

    def start_from(self, image: LocalImage | None) -> None:
        self.image = image
        self.config = copy.deepcopy((image.config.get("config") if image is not None else None) or {})
        if image is None:
            # FROM scratch starts with the PATH every Linux image has, as dockerd's builders give it.
            self.config["Env"] = [SCRATCH_PATH]
        env = {}
        for item in self.config.get("Env") or []:
            key, _, value = item.partition("=")
            env[key] = value
        self.scope.env_vars.update(env)


SCRATCH_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StepWriter:
    """Writes a step's image and records it in the build cache under the step's key."""

    def __init__(self, writer: ImageWriter, cache: BuildCache) -> None:
        self.writer = writer
        self.cache = cache

    async def commit(self, state: StageState, key: str, description: str, created_by: str, *,
                     layer: NewLayer | None, lease: str, container: str = "",
                     container_cmd: list[str] | None = None, snapshotter: str | None = None) -> LocalImage:
        """The step's image, now the stage's current one."""
        parent = state.image
        container_config = dict(state.config)
        container_config["Cmd"] = container_cmd or ["/bin/sh", "-c", created_by.removeprefix("/bin/sh -c ")]
        doc = child_config(parent.config if parent is not None else None, copy.deepcopy(state.config),
                           layer=layer, created=now(), created_by=created_by, author=state.author,
                           container=container, container_config=container_config, platform=state.platform)
        epoch = self.cache.index.epoch
        written = await self.writer.write(parent, doc, layer, lease=lease, snapshotter=snapshotter,
                                          record=self.cache.record_name(key), labels=self.cache.labels(description))
        self.cache.index.put(written.record, epoch)
        state.image = written.image
        return written.image
