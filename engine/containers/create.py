"""docker create: a CreatePlan carried out against the engine's stores and the runtime.

Names are reserved before anything else exists, networks are planned (wired at each start),
volumes are made now as Docker does, and the runtime container is created last: any failure
on the way releases what was taken.
"""
from __future__ import annotations

import contextlib
import logging
import posixpath
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.containers import dockerenv, links, names
from engine.containers.filesystem import storage_from
from engine.containers.hostlimits import Features
from engine.containers.images import Images
from engine.containers.live import Lives
from engine.containers.mounts import ReadOnly, explicit_destinations, image_mounts, read_only_depth, volume_mounts
from engine.containers.namespaces import donor_ref, network_sysctls
from engine.containers.pins import RunPins
from engine.containers.plan import CreatePlan, NetworkChoice, plan
from engine.containers.request import CreateRequest, Ulimit
from engine.containers.store import Container, ContainerStore
from engine.containers.volumesfrom import Inherited, inherited
from engine.errors import EngineError, InvalidArgument, NotFound
from engine.events import EventBus
from engine.images import platforms
from engine.images.platforms import Platform
from engine.networks import endpointcfg
from engine.networks.etcfiles import EtcConfig
from engine.networks.model import Network
from engine.networks.service import NetworkService
from engine.runtimes import RuntimeTable
from engine.volumes.service import VolumeService
from runtime.client import FailedPrecondition, RuntimeAPI

log = logging.getLogger("engine.containers")



@dataclass(frozen=True)
class ContainerDefaults:
    """The daemon's defaults for containers (daemon.json), as dockerd applies them."""

    ulimits: tuple[Ulimit, ...] = ()
    shm_size: int | None = None
    no_new_privileges: bool = False
    init: bool = False
    ipc_mode: str | None = None
    cgroupns_mode: str | None = None

    def fill(self, req: CreateRequest) -> None:
        """Into the request, so that inspect shows them as dockerd's: ulimits it sets none of, /dev/shm's size,
        the IPC and cgroup namespace modes."""
        given = {u.Name for u in req.HostConfig.Ulimits or []}
        if any(u.Name not in given for u in self.ulimits):
            req.HostConfig.Ulimits = [*(req.HostConfig.Ulimits or []),
                                      *(u for u in self.ulimits if u.Name not in given)]
        if self.shm_size and not req.HostConfig.ShmSize:
            req.HostConfig.ShmSize = self.shm_size
        if self.ipc_mode and not req.HostConfig.IpcMode:
            req.HostConfig.IpcMode = self.ipc_mode
        if self.cgroupns_mode and not req.HostConfig.CgroupnsMode:
            req.HostConfig.CgroupnsMode = self.cgroupns_mode

    def run_with(self, req: CreateRequest, p: CreatePlan) -> None:
        """Into the run only (dockerd leaves HostConfig.Init null and SecurityOpt as given)."""
        p.options["no_new_privileges"] = p.options["no_new_privileges"] or self.no_new_privileges
        if req.HostConfig.Init is None and self.init:
            p.init = True

class Creator:
    def __init__(self, runtime: RuntimeAPI, store: ContainerStore, lives: Lives, images: Images, events: EventBus,
                 networks: NetworkService, volumes: VolumeService, host: Features, pins: RunPins,
                 log_config: Callable[[dict[str, Any] | None], dict[str, Any]], runtimes: RuntimeTable,
                 dockerenv: Path | None = None, unpack: Callable[[str], Awaitable[object]] | None = None,
                 defaults: ContainerDefaults | None = None) -> None:
        """`log_config`: HostConfig.LogConfig as it will be in force (the daemon's defaults filled in), checked;
        `dockerenv`: the file bound at every container's /.dockerenv (dockerenv.py); `unpack`: the runtime's
        unpack of an image by name, for one a killed daemon stored but did not unpack (a build step's, a commit's)."""
        self._dockerenv = dockerenv
        self._unpack = unpack
        self._defaults = defaults or ContainerDefaults()
        self._rt = runtime
        self._runtimes = runtimes
        self._log_config = log_config
        self._store = store
        self._lives = lives
        self._images = images
        self._events = events
        self._networks = networks
        self._volumes = volumes
        self._host = host
        self._pins = pins

    async def create(self, name: str | None, req: CreateRequest,
                     platform: str | None = None) -> tuple[Container, list[str]]:
        """The new container and dockerd's warnings for it; `platform` is the one the image must be for."""
        bare = names.validate(name) if name else None
        wanted = platforms.parse(platform) if platform else None
        self._defaults.fill(req)
        runtime = self._runtimes.resolve(req.HostConfig.Runtime)
        image = await self._images.resolve(req.Image or "")
        warnings = _platform_warnings(req.Image or "", image.platform, wanted)
        cid = secrets.token_hex(32)
        if bare is None:
            bare = names.generate(self._store.name_taken)
        self._store.reserve(bare, cid)
        volumes: list[dict[str, Any]] = []
        try:
            features = await self._host.features()
            p = plan(req, image, cid, features, self._joined_hostname(req.HostConfig.NetworkMode or ""))
            self._defaults.run_with(req, p)
            p.host_config["LogConfig"] = self._log_config(p.host_config.get("LogConfig"))
            p.host_config["Runtime"] = runtime
            p.host_config["Links"] = links.at_create(p.network.links, bare, p.network.mode, self._store.find) or None
            options = p.options
            options["netns"], unplanned = await self._plan_network(cid, p.network)
            if p.network.joins is not None:  # kept by id, as dockerd keeps it
                p.host_config["NetworkMode"] = f"container:{self._store.get(p.network.joins).id}"
            own_netns = p.network.joins is None and options["netns"] != "host"
            options["sysctls"] = network_sysctls(own_netns, options["sysctls"], features,
                                                 no_network=p.network.mode == "none")
            self._plan_ipc(cid, p.host_config, options)
            self._plan_pid(cid, p.host_config, options)
            volumes, mounts, copied = await self._plan_volumes(cid, req, p, features)
            mounted_images, image_binds = await self._plan_image_mounts(cid, req)
            options["mounts"] = options["mounts"] + mounts + image_binds
            own = await self._etc_mounts(cid, p, options)
            if options["readonly_rootfs"]:
                # As dockerd: a read-only root makes the container's hosts and resolv.conf read-only too.
                own = [{**m, "options": [o if o != "rw" else "ro" for o in m["options"]]} for m in own]
            if self._dockerenv is not None:
                own.append(dockerenv.mount(self._dockerenv))
            options["mounts"] = options["mounts"] + _not_covered(own, options)
            # A copy-up fills the volume's own storage: one with mount options is mounted for it. One that cannot
            # be mounted is the start's to report, as with dockerd (which mounts only where the image has files).
            for v in volumes:
                with contextlib.suppress(EngineError):
                    await self._volumes.prepare(v["name"])
            try:
                try:
                    record = await self._rt.create_container(cid, image.ref, options, init=p.init)
                except FailedPrecondition:
                    if self._unpack is None:
                        raise
                    await self._unpack(image.ref)
                    record = await self._rt.create_container(cid, image.ref, options, init=p.init)
            finally:
                for v in volumes:
                    await self._volumes.release(v["name"])
        except BaseException:
            self._store.release(bare, cid)
            await self._networks.forget(cid)
            await self._pins.forget(cid)
            for v in volumes:
                if v["anonymous"]:
                    with contextlib.suppress(EngineError):
                        await self._volumes.remove(v["name"])
            raise
        storage = storage_from(record, record.rootfs)
        c = Container(id=cid, name=bare, created=time.time(), image=req.Image or "", image_ref=image.ref,
                      image_id=image.id, path=p.path, args=p.args, config=p.config, host_config=p.host_config,
                      volumes=volumes, binds_from=copied.binds, image_mounts=mounted_images, storage=storage,
                      unplanned_network=unplanned)
        await self._store.save(c)
        self._events.container(c, "create")
        log.info("created container=%s name=%s image=%s", cid, bare, image.ref)
        return c, warnings + p.warnings

    def _plan_ipc(self, cid: str, host_config: dict[str, Any], options: dict[str, Any]) -> None:
        """A shareable namespace of its own, or the one of the container named by `container:<ref>` (kept by id,
        as dockerd keeps it)."""
        mode = host_config["IpcMode"]
        ref = donor_ref(mode)
        if mode == "shareable":
            owner = cid
        elif ref is not None:
            donor = self._store.find(ref)
            if donor is None:
                raise InvalidArgument(f"No such container: {ref}")
            owner = donor.id
            host_config["IpcMode"] = f"container:{owner}"
        else:
            return
        options["ipc_mode"], shm = self._pins.ipc.spec_options(owner)
        options["mounts"] = options["mounts"] + [shm]

    def _plan_pid(self, cid: str, host_config: dict[str, Any], options: dict[str, Any]) -> None:
        """`container:<ref>`: the spec names a file of this container's own, on which each start pins the donor's
        namespace. A donor found now is kept by id, so renaming it does not break the link (as dockerd); one not
        found is looked for again at each start."""
        ref = donor_ref(host_config.get("PidMode"))
        if ref is None:
            return
        if (donor := self._store.find(ref)) is not None:
            host_config["PidMode"] = f"container:{donor.id}"
        options["pid_mode"] = self._pins.pid.spec_path(cid)

    async def _plan_network(self, cid: str, network: NetworkChoice) -> tuple[str | None, dict[str, Any] | None]:
        """The runtime's netns option; the endpoints are recorded now, wired at each start. A network that does
        not exist yet is looked for at the first start, as dockerd does (its 404 at create would send the
        docker CLI pulling the image again): then the EndpointsConfig to plan it with comes back too."""
        if network.joins is not None:
            try:
                other = self._store.get(network.joins)
            except NotFound as e:
                # Not a 404, which the docker CLI would read as a missing image (and pull one).
                raise InvalidArgument(e.message) from None
            mode = other.host_config.get("NetworkMode")
            if mode == "none":
                return self._pins.net.spec_path(cid), None  # runc's namespace of the donor's run, pinned at each start
            return "host" if mode == "host" else self._networks.joined_netns(other.id), None
        try:
            return await self._networks.plan(cid, network.mode, network.endpoints), None
        except NotFound:
            return self._networks.netns.path(cid), dict(network.endpoints or {})

    async def _etc_mounts(self, cid: str, p: CreatePlan, options: dict[str, Any]) -> list[dict[str, Any]]:
        """The engine's /etc/hosts and resolv.conf: its own when networked, the joined container's in container
        mode, copies of the host's with the host's network (as dockerd), Docker's fixed ones without a network."""
        network = p.network
        if network.joins is not None:
            other = self._store.get(network.joins)
            return self._networks.files.mounts(other.id) if self._networks.wired(other.id) else []
        if self._networks.wired(cid):
            return self._networks.files.mounts(cid)
        if options["netns"] == "host":
            return await self._networks.files.endpointless(cid)
        return await self._networks.files.endpointless(cid, EtcConfig.of(cid, p.config, p.host_config), host=False)

    async def _plan_volumes(self, cid: str, req: CreateRequest, p: CreatePlan, features: Mapping[str, Any]
                            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Inherited]:
        """The volumes (made now when new, as Docker does), their spec mounts and what --volumes-from copies."""
        resolved, mounts = [], []
        hc = req.HostConfig
        copied = inherited(hc.VolumesFrom or [], self._store.get,
                           explicit_destinations(hc.Binds or [], hc.Mounts or [], hc.Tmpfs or {}))
        for want in volume_mounts(hc.Binds or [], hc.Mounts or [], hc.Tmpfs or {}, list(req.Volumes or {}),
                                  list(p.image_volumes or {}), copied.destinations()):
            v = await self._volumes.create(want["name"], driver=want.get("driver", "local"),
                                           options=want.get("options"), labels=want.get("labels"),
                                           anonymous=want["name"] is None)
            resolved.append({"name": v.name, "destination": want["destination"], "read_only": want["read_only"],
                             "anonymous": v.anonymous and want["name"] is None, "mode": want["mode"],
                             **_subpath(want)})
            # dockerd tells of every create, an existing volume's included.
            self._events.volume("create", v.name, driver=v.driver)
            mode = "ro" if want["read_only"] else "rw"
            mounts.append({"type": "bind", "source": self._volume_source(cid, len(resolved) - 1, resolved[-1]),
                           "destination": want["destination"], "options": ["rbind", mode], "copy_up": want["copy"]})
        for shared in copied.volumes:
            # An anonymous one stays anonymous: as with dockerd, the last of its users removed with -v takes it.
            resolved.append(dict(shared))
            mounts.append({"type": "bind", "source": self._volume_source(cid, len(resolved) - 1, shared),
                           "destination": shared["destination"],
                           "options": ["rbind", "ro" if shared["read_only"] else "rw"]})
        read_only = ReadOnly(bool(features.get("recursive_readonly")), not req.read_only_top_only)
        for b in copied.binds:
            depth = read_only_depth(b.get("depth", ""), read_only) if b["read_only"] else []
            mounts.append({"type": "bind", "source": b["source"], "destination": b["destination"],
                           "options": ["rbind" if b.get("recursive", True) else "bind",
                                       "ro" if b["read_only"] else "rw", *depth, b["propagation"]]})
        return resolved, mounts, copied

    async def _plan_image_mounts(self, cid: str,
                                 req: CreateRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """--mount type=image: each image looked up now (it must be here, as dockerd wants it), and the spec's bind
        of the node each start mounts it on (engine/containers/image_mounts.py)."""
        planned, binds = [], []
        for index, want in enumerate(image_mounts(req.HostConfig.Mounts or [])):
            image = await self._images.resolve(want["source"])
            if not image.chain_id:
                raise InvalidArgument(f'invalid mount config for type "image": image {want["source"]} has no files')
            planned.append({**want, "image_id": image.id, "chain_id": image.chain_id})
            binds.append({"type": "bind", "source": self._pins.images.spec_source(cid, index),
                          "destination": want["destination"], "options": ["rbind", "ro", "rprivate"]})
        return planned, binds

    def _volume_source(self, cid: str, index: int, mount: dict[str, Any]) -> str:
        """The volume's directory, or for a subpath the node each start pins it on."""
        if mount.get("subpath"):
            return self._pins.subpaths.spec_source(cid, index)
        return self._volumes.mountpoint(mount["name"])

    def _joined_hostname(self, mode: str) -> str | None:
        donor = self._store.find(mode.split(":", 1)[1]) if mode.startswith("container:") else None
        if donor is None:
            return None
        return str(donor.config.get("Hostname") or "") or None

    async def connect(self, ref: str, network_id: str, cfg: dict[str, Any]) -> None:
        c = self._store.get(ref)
        async with self._lives.of(c.id).lock:
            c = self._lives.current(ref, c.id)
            n, mode = self._networks.get(network_id), str(c.host_config.get("NetworkMode") or "default")
            main = mode in (n.name, n.id) or (mode == "default" and n.name == "bridge")
            if not cfg.get("MacAddress") and c.config.get("MacAddress") and main:
                # The container-wide MacAddress is its main network's, whichever endpoint it has there: compose
                # disconnects and connects that network again before the first start.
                cfg = {**cfg, "MacAddress": c.config["MacAddress"]}
            linked = links.resolve(c, self._store.find, self._networks.bridge_address, strict=False)
            await self._networks.connect(network_id, c.id, cfg, running=c.state.running,
                                         etc=EtcConfig.of(c.id, c.config, c.host_config, linked.hosts),
                                         mode=str(c.host_config.get("NetworkMode") or "bridge"))

    async def disconnect(self, ref: str, network_id: str) -> None:
        c = self._store.get(ref)
        async with self._lives.of(c.id).lock:
            c = self._lives.current(ref, c.id)
            await self._networks.disconnect(network_id, c.id, running=c.state.running)

    async def remove_network(self, ref: str) -> Network:
        """dockerd's rule: only running containers hold a network. Those that do not run lose their place on
        it, and their next start looks for it by name again (and fails if none has it), as dockerd's does."""
        n = self._networks.get(ref)
        users = [c for cid in sorted(set(self._networks.users(n))) if (c := self._store.find(cid)) is not None]
        if any(c.state.running for c in users):
            await self._networks.remove(n.id)  # refused, in libnetwork's words
        async with contextlib.AsyncExitStack() as held:
            for c in users:  # none starts while its endpoint goes (a start takes its lock)
                await held.enter_async_context(self._lives.of(c.id).lock)
            idle = {c.id for c in users if (now := self._store.find(c.id)) is not None and not now.state.running}
            n, dropped = await self._networks.remove(n.id, idle=idle)
            for e in dropped:
                if (c := self._store.find(e.container_id)) is not None:
                    c.unplanned_network = {**(c.unplanned_network or {}), n.name: endpointcfg.settings_of(e)}
                    await self._store.save(c)
        return n


def _subpath(mount: dict[str, Any]) -> dict[str, str]:
    return {"subpath": mount["subpath"]} if mount.get("subpath") else {}


def _not_covered(etc: list[dict[str, Any]], options: dict[str, Any]) -> list[dict[str, Any]]:
    """A user's own mount at /etc/hosts or /etc/resolv.conf replaces the generated file, as in dockerd."""
    taken = {posixpath.normpath(m["destination"]) for m in options["mounts"]}
    taken |= {posixpath.normpath(t) for t in options.get("tmpfs") or {}}
    return [m for m in etc if m["destination"] not in taken]


def _platform_warnings(ref: str, actual: Platform, wanted: Platform | None) -> list[str]:
    """dockerd's check of the image's platform: the one asked for, or a warning when the host's differs."""
    if wanted is not None:
        if not wanted.matches(actual):
            raise NotFound(f"image with reference {ref} was found but does not match the specified platform: "
                           f"wanted {wanted}, actual: {actual}")
        return []
    if platforms.host().matches(actual):
        return []
    return [f"WARNING: The requested image's platform ({actual}) does not match the detected host platform "
            f"({platforms.host()}) and no specific platform was requested"]

