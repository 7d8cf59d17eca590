"""Creating and removing containers: a writable rootfs snapshot on the image and an OCI spec.

The spec is generated here, so that errors that depend on the image (an unknown user)
surface when the container is created and `containers info` shows the real spec. The new
rootfs is mounted for a moment to resolve the user, unless a container of the same image
chain already resolved it (runtime/tasks/user_cache.py), and to copy image content up into
bind mounts that ask for it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from runtime.images.config import resolve as resolve_image
from runtime.metadata.containers import Container, ContainerStore, validate_id
from runtime.metadata.content import ContentService
from runtime.metadata.images import ImageStore
from runtime.metadata.snapshots import SnapshotService
from runtime.mount import Mount, mounted, unmount_all_under
from runtime.namespaces import require_namespace, reset_namespace, set_namespace
from runtime.oci import Descriptor
from runtime.rootfs.copyup import copy_up
from runtime.snapshots.snapshotter import Kind
from runtime.tasks.spec import generate
from runtime.tasks.spec_options import ResourceOptions, SpecOptions
from runtime.tasks.spec_resources import LIMITS, linux_resources
from runtime.tasks.user_cache import ResolvedUsers
from runtime.tasks.user_cache import key as user_key
from runtime.tasks.users import ExecUser, UnknownName, resolve_user

log = logging.getLogger("runtime.containers")

# On a container's rw snapshot: whose it is, so one left by an interrupted create can be told apart.
OWNER_LABEL = "io.pyengine.container"
# Image targets whose chain ID a create remembers (a few bytes each; the oldest goes first).
_CHAINS_KEPT = 256
_NOBODY = 65534


class CreatedContainer(Container):
    """A new container's record and the mounts of its writable snapshot, which its creator would ask for next."""

    rootfs: list[Mount]


class ContainerCreate(BaseModel):
    id: str
    image: str
    snapshotter: str | None = None
    runtime: str = "runc"
    labels: dict[str, str] = Field(default_factory=dict)
    options: SpecOptions = Field(default_factory=SpecOptions)
    # Run the command under tini, as `docker run --init` does: a plain process as
    # pid 1 never sees SIGTERM (the kernel drops signals pid 1 has no handler for).
    init: bool = False


INIT_BINARY = "/usr/bin/tini-static"
INIT_PATH = "/sbin/pyengine-init"


class ContainerService:
    def __init__(self, root: Path, cgroup_root: str, store: ContainerStore, images: ImageStore,
                 content: ContentService, snapshots: dict[str, SnapshotService], default_snapshotter: str,
                 runtimes: set[str]) -> None:
        self._root = root
        # Where a container's rootfs is mounted for a moment at create: the runtime's own, so that what a
        # runtime killed in that moment leaves mounted is found and unmounted at the next start.
        self._scratch = root / "tmp" / "create"
        self._cgroup_root = cgroup_root
        self.store = store
        self._images = images
        self._content = content
        self._snapshots = snapshots
        self._default_snapshotter = default_snapshotter
        self._runtimes = runtimes
        self._users = ResolvedUsers()
        self._chains: dict[tuple[str, str], str | None] = {}

    async def sweep_scratch(self) -> None:
        """At start: unmount and remove the create-time rootfs mounts a killed runtime left."""
        def sweep() -> None:
            self._scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
            unmount_all_under(str(self._scratch), detach=True)
            for leftover in self._scratch.iterdir():
                log.warning("removed the create-time mount point %s a killed runtime left", leftover)
                shutil.rmtree(leftover, ignore_errors=True)

        await asyncio.to_thread(sweep)

    async def remove_orphaned_snapshots(self) -> None:
        """At start: a runtime killed between preparing a container's rw snapshot and recording the container
        (or in the middle of removing it) leaves a snapshot no container owns. Active snapshots are GC roots,
        so nothing else would ever remove it."""
        for service in self._snapshots.values():
            for info in await service.backend.walk():
                owner = info.labels.get(OWNER_LABEL)
                if info.kind != Kind.ACTIVE or owner is None or "/" not in info.key:
                    continue
                ns, key = info.key.split("/", 1)
                token = set_namespace(ns)
                try:
                    try:
                        await self.store.get(owner)
                    except NotFound:
                        await service.remove(key)
                        log.warning("removed snapshot=%s namespace=%s of a container never recorded", key, ns)
                finally:
                    reset_namespace(token)

    async def create(self, req: ContainerCreate) -> CreatedContainer:
        ns = require_namespace()
        validate_id(req.id)
        snapshotter = req.snapshotter or self._default_snapshotter
        if snapshotter not in self._snapshots:
            raise InvalidArgument(f"snapshotter {snapshotter!r} is not loaded")
        if req.runtime not in self._runtimes:
            have = ", ".join(sorted(self._runtimes))
            raise InvalidArgument(f"runtime {req.runtime!r} is not available (have: {have})")
        try:
            await self.store.get(req.id)
            raise AlreadyExists(f"container {req.id} already exists")
        except NotFound:
            pass
        if req.options.cgroup_parent is None:
            req.options.cgroup_parent = f"{self._cgroup_root.rstrip('/')}/{ns}"
        image = await self._images.find(req.image)
        chain_id = await self._chain_of(ns, image.target)
        service = self._snapshots[snapshotter]
        try:
            mounts = await service.prepare(req.id, chain_id, {OWNER_LABEL: req.id})
        except AlreadyExists:
            raise AlreadyExists(f"snapshot {req.id} already exists (a container of that id is being created)") from None
        except NotFound:
            # The only snapshot prepare looks for is the parent: the image's top layer.
            raise FailedPrecondition(f"image {req.image} is not unpacked for snapshotter {snapshotter}") from None
        try:
            opts = req.options
            copy_ups = [m for m in opts.mounts if m.copy_up and m.type == "bind" and os.path.isdir(m.source)]
            users = user_key(chain_id, opts.user, opts.additional_gids)
            user = self._users.get(users)
            if user is None or copy_ups:
                def on_rootfs() -> ExecUser | None:
                    with mounted(mounts, parent=str(self._scratch)) as root:
                        for m in copy_ups:
                            copy_up(root, m.destination, m.source)
                        try:
                            return resolve_user(root, opts.user, opts.additional_gids)
                        except UnknownName:
                            return None  # as Docker: the start looks again (runtime/tasks/start_user.py)

                found = await asyncio.to_thread(on_rootfs)
                if found is not None:
                    self._users.put(users, found)
                # Nobody until the start resolves the name; a start that cannot refuses to run at all.
                user = found or ExecUser(uid=_NOBODY, gid=_NOBODY)
            spec = generate(user, req.id, ns, opts)
            if req.init:
                _add_init(spec)
            if opts.etc_files:
                await asyncio.to_thread(self._etc_files, ns, req.id, spec)
            record = await self.store.create(Container(
                id=req.id, image=req.image, snapshotter=snapshotter, snapshot_key=req.id, runtime=req.runtime,
                spec=spec, labels=req.labels,
            ))
            return CreatedContainer(**record.model_dump(), rootfs=mounts)
        except BaseException:
            await service.remove(req.id)
            await asyncio.to_thread(shutil.rmtree, self._dir(ns, req.id), True)
            raise

    async def _chain_of(self, ns: str, target: Descriptor) -> str | None:
        """The chain ID naming the snapshot of an image's top layer (None: no layers). The target's digest fixes
        it, so it is read from the manifest and config once per namespace and digest, not at every create."""
        key = (ns, target.digest)
        if key not in self._chains:
            chain_id = (await resolve_image(self._content, target)).chain_id
            if len(self._chains) >= _CHAINS_KEPT:
                del self._chains[next(iter(self._chains))]
            self._chains[key] = chain_id
        return self._chains[key]

    def _dir(self, ns: str, container_id: str) -> Path:
        return self._root / "containers" / ns / container_id

    def _etc_files(self, ns: str, container_id: str, spec: dict[str, Any]) -> None:
        """/etc/hostname, /etc/hosts and /etc/resolv.conf as Docker gives them, unless the spec mounts its own."""
        taken = {m.get("destination") for m in spec.get("mounts", [])}
        d = self._dir(ns, container_id)
        d.mkdir(parents=True, exist_ok=True)
        hostname = spec.get("hostname") or container_id[:12]
        files = {
            "/etc/hostname": f"{hostname}\n",
            "/etc/hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n",
            "/etc/resolv.conf": _resolv_conf(),
        }
        mode = "ro" if (spec.get("root") or {}).get("readonly") else "rw"
        for dest, text in files.items():
            if dest in taken:
                continue
            path = d / os.path.basename(dest)
            path.write_text(text)
            spec["mounts"].append({"destination": dest, "type": "bind", "source": str(path),
                                   "options": ["rbind", "rprivate", mode]})

    async def update_resources(self, container_id: str, resources: ResourceOptions) -> Container:
        """New cgroup limits for the container's next task (a live task gets them from the task service)."""
        c = await self.store.get(container_id)
        linux = c.spec.setdefault("linux", {})
        # Device rules live in resources too, but they are access control, set once at create.
        kept = {k: v for k, v in (linux.get("resources") or {}).items() if k not in LIMITS}
        linux["resources"] = {**kept, **linux_resources(resources)}
        return await self.store.set_spec(container_id, c.spec)

    async def delete(self, container_id: str, keep_snapshot: bool = False) -> None:
        ns = require_namespace()
        c = await self.store.get(container_id)
        await self.store.delete(container_id)
        await asyncio.to_thread(shutil.rmtree, self._dir(ns, container_id), True)
        if not keep_snapshot:
            service = self._snapshots.get(c.snapshotter)
            if service is not None and await service.exists(c.snapshot_key):
                await service.remove(c.snapshot_key)


def _add_init(spec: dict[str, Any]) -> None:
    if not os.access(INIT_BINARY, os.X_OK):
        raise FailedPrecondition(f"init requested but {INIT_BINARY} is not installed (Debian package tini)")
    spec["mounts"].append({"destination": INIT_PATH, "type": "bind", "source": INIT_BINARY,
                           "options": ["rbind", "ro", "nosuid", "nodev"]})
    # -g: signals go to the whole process group, so a shell's children stop too.
    spec["process"]["args"] = [INIT_PATH, "-g", "--", *spec["process"]["args"]]


def _resolv_conf() -> str:
    """The host's resolv.conf without loopback resolvers, which mean nothing in another network namespace."""
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        lines = []
    kept = [ln for ln in lines if not (ln.startswith("nameserver") and ln.split()[1:2] and
                                       ln.split()[1].startswith(("127.", "::1")))]
    if not any(ln.startswith("nameserver") for ln in kept):
        kept.append("nameserver 8.8.8.8")
    return "\n".join(kept) + "\n"
