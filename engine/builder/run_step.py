"""RUN: the command runs in a container of the engine's own, made from the stage's current image.

As dockerd's classic builder does, the step container is an ordinary container (create, attach,
start, wait, remove: the same events, networks, limits and /etc files as `docker run`), so the
build's network mode, extra hosts, shm size and limits mean what they mean for a container. Its
filesystem changes become the step's layer through the runtime's diff service. BuildKit's
`--mount`s are honoured: cache mounts are directories of the daemon's that persist across builds,
bind mounts come from the build context, tmpfs mounts are tmpfs; secrets and ssh need a BuildKit
session the classic API cannot carry, and are refused by name.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from engine.builder.context import BuildContext
from engine.builder.dockerfile import RunProcess
from engine.builder.dockerfile.instructions import Run
from engine.builder.dockerfile.mounts import Mount, MountType, Sharing
from engine.builder.options import BuildOptions
from engine.builder.progress import BuildProgress, StepFailed
from engine.builder.state import StageState
from engine.containers.create import Creator
from engine.containers.request import CreateRequest
from engine.containers.run import RunControl
from engine.containers.waits import WaitCondition
from engine.containers.store import Container
from engine.errors import InvalidArgument
from engine.images.compose import NewLayer
from runtime.client.attach import STDERR
from runtime.client.diff import DiffAPI
from runtime.client.records import Container as RuntimeContainer


class StepRuntime(DiffAPI, Protocol):
    async def container(self, container_id: str, namespace: str | None = None) -> RuntimeContainer: ...


class CacheMounts:
    """The directories behind `--mount=type=cache`, by id; `locked` and `private` ones one user at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    def directory(self, mount: Mount) -> Path:
        path = self.root / hashlib.sha256(mount.id.encode()).hexdigest()
        if not path.exists():
            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".new-"))
            os.chmod(tmp, mount.mode if mount.mode is not None else 0o755)
            os.chown(tmp, mount.uid or 0, mount.gid or 0)
            with contextlib.suppress(OSError):
                tmp.rename(path)  # a concurrent first use made it already: theirs stands
            if tmp.exists():
                tmp.rmdir()
        return path

    def lock(self, mount: Mount) -> asyncio.Lock | None:
        # A private cache is one no concurrent step shares: here that step waits for it to be free
        # rather than getting a fresh empty one, which is what BuildKit gives.
        if mount.sharing is Sharing.SHARED:
            return None
        return self._locks.setdefault(mount.id, asyncio.Lock())


class RunStep:
    def __init__(self, creator: Creator, run: RunControl, runtime: StepRuntime, caches: CacheMounts) -> None:
        self.creator = creator
        self.run = run
        self.runtime = runtime
        self.caches = caches

    async def execute(self, state: StageState, step: Run, process: RunProcess, env: dict[str, str],
                      options: BuildOptions, context: BuildContext, progress: BuildProgress,
                      lease: str) -> tuple[NewLayer, str, str]:
        """Run the step; (its layer, the step container's id, its snapshotter). StepFailed on a non-zero exit."""
        if state.image is None:
            raise InvalidArgument(f"{step.original}: a RUN needs an image to run in; this stage has none yet "
                                  "(FROM scratch with nothing copied)")
        async with contextlib.AsyncExitStack() as stack:
            mounts, tmpfs = await self._mounts(step, process, context, stack)
            network = step.network if step.network != "default" else options.network_mode
            host_config: dict[str, Any] = {
                **options.host_config, "NetworkMode": network, "ExtraHosts": list(options.extra_hosts) or None,
                "Mounts": mounts or None, "Tmpfs": tmpfs or None,
            }
            req = CreateRequest.model_validate({
                "Image": state.image.id, "Cmd": process.args, "Entrypoint": [],
                "Env": [f"{k}={v}" for k, v in env.items()], "AttachStdout": True, "AttachStderr": True,
                "Healthcheck": {"Test": ["NONE"]}, "HostConfig": host_config,
            })
            container, _ = await self.creator.create(None, req)
            await progress.text(f" ---> Running in {container.id[:12]}\n")
            removed = False
            try:
                code = await self._run(container, progress)
                if code != 0:
                    raise StepFailed(f"The command '{' '.join(process.args)}' returned a non-zero code: {code}", code)
                record = await self.runtime.container(container.id)
                snapshotter = record.snapshotter
                diff = await self.runtime.compare(snapshotter, record.snapshot_key, commit=True, lease=lease)
                layer = NewLayer(diff.descriptor.model_dump(exclude_none=True), diff.diff_id)
                if options.remove:
                    await self.remove(container, progress)
                    removed = True
                return layer, container.id, snapshotter
            except StepFailed:
                if options.force_remove:
                    await self.remove(container, progress)
                    removed = True
                raise
            finally:
                if not removed and asyncio.current_task() is not None and _cancelling():
                    # A build its client left: nothing of it stays behind.
                    await asyncio.shield(self.run.remove(container.id, force=True, volumes=True))

    async def remove(self, container: Container, progress: BuildProgress) -> None:
        await progress.text(f"Removing intermediate container {container.id[:12]}\n")
        await self.run.remove(container.id, force=True, volumes=True)

    async def _run(self, container: Container, progress: BuildProgress) -> int:
        exited = self.run.wait(container.id, WaitCondition.NEXT_EXIT)
        attaching = asyncio.ensure_future(self.run.attachment(container))
        # One turn of the loop lets the attach register for the start (the container is the build's
        # own: nothing else holds its lock), so no output is missed.
        await asyncio.sleep(0)
        await self.run.start(container.id)
        attachment = await attaching
        if attachment is not None:
            async with attachment:
                async for stream, data in attachment:
                    await progress.output(data, stderr=stream == STDERR)
        return await exited

    async def _mounts(self, step: Run, process: RunProcess, context: BuildContext,
                      stack: contextlib.AsyncExitStack) -> tuple[list[dict[str, Any]], dict[str, str]]:
        mounts: list[dict[str, Any]] = []
        tmpfs: dict[str, str] = {}
        for m in step.mounts:
            if m.type in (MountType.SECRET, MountType.SSH):
                raise InvalidArgument(f"{step.original}: --mount=type={m.type.value} needs a BuildKit session, "
                                      "which the classic build API (docker build without buildx) cannot carry")
            if m.from_:
                raise InvalidArgument(f"{step.original}: --mount from={m.from_} is not supported by this builder; "
                                      "mount from the build context or copy from the stage instead")
            if m.type is MountType.TMPFS:
                tmpfs[m.target] = f"size={m.size}" if m.size else ""
            elif m.type is MountType.CACHE:
                path = await asyncio.to_thread(self.caches.directory, m)
                lock = self.caches.lock(m)
                if lock is not None:
                    await stack.enter_async_context(lock)
                mounts.append({"Type": "bind", "Source": str(path), "Target": m.target, "ReadOnly": m.readonly})
            else:
                source = (await context.resolve([m.source or "."], allow_wildcards=False, instruction="RUN"))[0].path
                if not m.readonly:
                    # BuildKit lets a step write to a bind mount and throws the writes away: a copy.
                    source = await stack.enter_async_context(_scratch_copy(source))
                mounts.append({"Type": "bind", "Source": str(source), "Target": m.target, "ReadOnly": m.readonly})
        for f in process.files:
            path = await stack.enter_async_context(_script(f.content, f.mode))
            mounts.append({"Type": "bind", "Source": str(path), "Target": f.path, "ReadOnly": True})
        return mounts, tmpfs


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@contextlib.asynccontextmanager
async def _scratch_copy(source: Path) -> AsyncIterator[Path]:
    tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="pyengine-build-bind-"))
    target = tmp / "src"
    try:
        if source.is_dir():
            await asyncio.to_thread(shutil.copytree, source, target, symlinks=True)
        else:
            await asyncio.to_thread(shutil.copy2, source, target)
        yield target
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)


@contextlib.asynccontextmanager
async def _script(content: str, mode: int) -> AsyncIterator[Path]:
    tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="pyengine-build-script-"))
    path = tmp / "script"
    try:
        path.write_text(content)
        path.chmod(mode)
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)
