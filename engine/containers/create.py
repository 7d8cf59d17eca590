"""docker create: a CreatePlan carried out against the engine's stores and the runtime.

Names are reserved before anything else exists, networks are planned (wired at each start),
volumes are made now as Docker does, and the runtime container is created last: any failure
on the way releases what was taken.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from engine.containers import names
from engine.containers.hostlimits import Features
from engine.containers.images import Images
from engine.containers.live import Lives
from engine.containers.options import CreateRequest, volume_mounts
from engine.containers.plan import CreatePlan, NetworkChoice, plan
from engine.containers.store import Container, ContainerStore
from engine.errors import EngineError
from engine.events import EventBus
from engine.networks.service import NetworkService
from engine.volumes.service import VolumeService
from runtime.client import RuntimeAPI

log = logging.getLogger("engine.containers")


class Creator:
    def __init__(self, runtime: RuntimeAPI, store: ContainerStore, lives: Lives, images: Images, events: EventBus,
                 networks: NetworkService, volumes: VolumeService, host: Features,
                 log_config: Callable[[dict[str, Any] | None], dict[str, Any]]) -> None:
        """`log_config`: HostConfig.LogConfig as it will be in force (the daemon's defaults filled in), checked."""
        self._rt = runtime
        self._log_config = log_config
        self._store = store
        self._lives = lives
        self._images = images
        self._events = events
        self._networks = networks
        self._volumes = volumes
        self._host = host

    async def create(self, name: str | None, req: CreateRequest) -> tuple[Container, list[str]]:
        """The new container and dockerd's warnings for it."""
        bare = names.validate(name) if name else None
        image = await self._images.resolve(req.Image or "")
        cid = secrets.token_hex(32)
        if bare is None:
            bare = names.generate(self._store.name_taken)
        self._store.reserve(bare, cid)
        volumes: list[dict[str, Any]] = []
        try:
            p = plan(req, image, cid, await self._host.features())
            p.host_config["LogConfig"] = self._log_config(p.host_config.get("LogConfig"))
            options = p.options
            options["netns"] = await self._plan_network(cid, p.network)
            etc_of = self._etc_owner(cid, p.network)
            if etc_of is not None:
                options["mounts"] = options["mounts"] + self._networks.etc_mounts(etc_of)
            volumes, mounts = await self._plan_volumes(req, p)
            options["mounts"] = options["mounts"] + mounts
            await self._rt.create_container(cid, image.ref, options, init=p.init)
        except BaseException:
            self._store.release(bare, cid)
            await self._networks.forget(cid)
            for v in volumes:
                if v["anonymous"]:
                    with contextlib.suppress(EngineError):
                        await self._volumes.remove(v["name"])
            raise
        c = Container(id=cid, name=bare, created=time.time(), image=req.Image or "", image_ref=image.ref,
                      image_id=image.id, path=p.path, args=p.args, config=p.config, host_config=p.host_config,
                      volumes=volumes)
        await self._store.save(c)
        self._events.container(c, "create")
        log.info("created container=%s name=%s image=%s", cid, bare, image.ref)
        return c, p.warnings

    async def _plan_network(self, cid: str, network: NetworkChoice) -> str | None:
        """The runtime's netns option; the endpoints are recorded now, wired at each start."""
        if network.joins is not None:
            other = self._store.get(network.joins)
            return "host" if other.host_config.get("NetworkMode") == "host" else self._networks.joined_netns(other.id)
        return await self._networks.plan(cid, network.mode, network.endpoints)

    def _etc_owner(self, cid: str, network: NetworkChoice) -> str | None:
        """Whose /etc/hosts and resolv.conf the container sees: its own when networked, its host's in container mode."""
        if network.joins is not None:
            other = self._store.get(network.joins)
            return other.id if self._networks.wired(other.id) else None
        return cid if self._networks.wired(cid) else None

    async def _plan_volumes(self, req: CreateRequest, p: CreatePlan) -> tuple[list[dict[str, Any]],
                                                                               list[dict[str, Any]]]:
        """The volumes (made now when new, as Docker does) and their spec mounts."""
        resolved, mounts = [], []
        for want in volume_mounts(req, p.image_volumes):
            v = await self._volumes.create(want["name"], anonymous=want["name"] is None)
            resolved.append({"name": v.name, "destination": want["destination"], "read_only": want["read_only"],
                             "anonymous": v.anonymous and want["name"] is None})
            # dockerd tells of every create, an existing volume's included.
            self._events.volume("create", v.name, driver=v.driver)
            mode = "ro" if want["read_only"] else "rw"
            mounts.append({"type": "bind", "source": self._volumes.mountpoint(v.name),
                           "destination": want["destination"], "options": ["rbind", mode], "copy_up": want["copy"]})
        return resolved, mounts

    async def connect(self, ref: str, network_id: str, cfg: dict[str, Any]) -> None:
        c = self._store.get(ref)
        async with self._lives.of(c.id).lock:
            c = self._lives.current(ref, c.id)
            await self._networks.connect(network_id, c.id, cfg, running=c.state.running,
                                         hostname=c.config.get("Hostname") or c.id[:12],
                                         domainname=c.config.get("Domainname") or "")

    async def disconnect(self, ref: str, network_id: str) -> None:
        c = self._store.get(ref)
        async with self._lives.of(c.id).lock:
            c = self._lives.current(ref, c.id)
            await self._networks.disconnect(network_id, c.id, running=c.state.running)
