"""One stage of a build: its instructions in order, each a step that ends in an image (or a cache hit).

A step's cache key is its parent image's ID and what decides its result: the Config after the
step, the instruction, and per kind the process and build-time environment (RUN) or the checksums
of the files copied (COPY/ADD). With `nocache` every step runs; its result still refreshes the cache.
"""
from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine.builder import dockerfile as df
from engine.builder.cache import BuildCache, continues, step_key
from engine.builder.context import BuildContext
from engine.builder.copy_files import CopyFiles
from engine.builder.dockerfile import instructions as ins
from engine.builder.dockerfile.mounts import Mount
from engine.builder.options import BuildOptions
from engine.builder.progress import BuildProgress
from engine.builder.run_step import RunStep
from engine.builder.state import NOP, StageState, StepWriter
from engine.errors import InvalidArgument
from engine.images.compose import NewLayer
from engine.images.model import LocalImage
from engine.images.writer import ImageWriter, LazyLease
from runtime.client import InvalidArgument as RuntimeInvalidArgument
from runtime.client.signals import parse_signal

_METADATA = (ins.Env, ins.Label, ins.Expose, ins.Volume, ins.User, ins.Cmd, ins.Entrypoint, ins.OnBuild)

# Another stage's final image, or an image by reference (pulled if need be): COPY --from's sources.
ImageSource = Callable[[str, int], Awaitable[LocalImage]]


@dataclass
class StepCounter:
    number: int
    total: int


class StageRunner:
    def __init__(self, writer: ImageWriter, cache: BuildCache, run_step: RunStep, copy_files: CopyFiles,
                 options: BuildOptions, context: BuildContext, progress: BuildProgress, lease: LazyLease,
                 counter: StepCounter, cache_sources: list[LocalImage]) -> None:
        """`cache_sources`: the build's `cachefrom` images found here."""
        self.cache_sources = cache_sources
        self.steps = StepWriter(writer, cache)
        self.cache = cache
        self.run_step = run_step
        self.copy_files = copy_files
        self.options = options
        self.context = context
        self.progress = progress
        self.lease = lease
        self.counter = counter

    async def run(self, state: StageState, instructions: list[ins.Instruction], image_source: ImageSource) -> None:
        for instruction in instructions:
            self.counter.number += 1
            await self.progress.step(self.counter.number, self.counter.total, instruction.original)
            await self.execute(state, instruction, image_source)
            await self.progress.result(state.image_id)

    async def execute(self, state: StageState, instruction: ins.Instruction, image_source: ImageSource) -> None:
        if isinstance(instruction, ins.Run):
            await self._run(state, instruction)
        elif isinstance(instruction, ins.Copy):
            await self._copy(state, instruction, image_source)
        elif isinstance(instruction, ins.Workdir):
            df.apply_instruction(state.config, instruction, state.scope.env(), state.escape, state.cmd_set)
            await self._workdir(state, instruction)
        else:
            self._metadata(state, instruction)
            await self._commit_metadata(state, instruction)

    def _metadata(self, state: StageState, instruction: ins.Instruction) -> None:
        env = state.scope.env()
        if isinstance(instruction, ins.Arg):
            state.scope.declare(instruction)
        elif isinstance(instruction, _METADATA):
            df.apply_instruction(state.config, instruction, env, state.escape, state.cmd_set)
            if isinstance(instruction, ins.Cmd):
                state.cmd_set = True
            if isinstance(instruction, ins.Env):
                for item in state.config.get("Env") or []:
                    key, _, value = item.partition("=")
                    state.scope.set_env(key, value)
        elif isinstance(instruction, ins.StopSignal):
            stop_signal = df.expand(instruction.signal, env, state.escape)
            try:
                parse_signal(stop_signal)
            except RuntimeInvalidArgument as e:
                raise InvalidArgument(e.message) from None  # at build, not at each run of the image
            state.config["StopSignal"] = stop_signal
        elif isinstance(instruction, ins.Shell):
            state.config["Shell"] = list(instruction.shell)
        elif isinstance(instruction, ins.Maintainer):
            state.author = instruction.name
        elif isinstance(instruction, ins.Healthcheck):
            state.config["Healthcheck"] = df.healthcheck(instruction)
        else:
            raise InvalidArgument(f"{instruction.keyword} is not supported here (line {instruction.start_line})")

    async def _commit_metadata(self, state: StageState, instruction: ins.Instruction) -> None:
        key = step_key(state.image_id, {"kind": "meta", "instruction": instruction.original,
                                        "config": state.config, "author": state.author})
        created_by = NOP + " " + instruction.original
        if await self._cached(state, key, instruction.original, created_by):
            return
        await self.steps.commit(state, key, instruction.original, created_by, layer=None,
                                lease=await self.lease.id())

    async def _cached(self, state: StageState, key: str, description: str, created_by: str) -> bool:
        """The step's result from the build cache, or from a `cachefrom` image whose history continues
        the stage's image with this very step (dockerd's rule: same layers so far, same history, and the
        next entry made by the same command)."""
        if self.options.no_cache:
            return False
        hit = await self.cache.lookup(key)
        image = hit.image if hit is not None else None
        if hit is not None:
            self.cache.count(hit)
        if image is None and self.cache_sources:
            found = next((m for m in (continues(state.image, source, created_by) for source in self.cache_sources)
                          if m is not None), None)
            if found is not None:
                source, layer = found
                if _is_step_result(state, source):
                    image = source
                    await self.cache.remember(key, source, description)
                else:
                    image = await self.steps.commit(state, key, description, created_by, layer=layer,
                                                    lease=await self.lease.id())
        if image is None:
            return False
        await self.progress.text(" ---> Using cache\n")
        state.image = image
        return True

    async def _run(self, state: StageState, step: ins.Run) -> None:
        process = df.run_process(step, state.shell)
        run_env = state.scope.run_env()
        key = step_key(state.image_id, {"kind": "run", "args": process.args, "env": sorted(run_env.items()),
                                        "files": [(f.path, f.content, f.mode) for f in process.files],
                                        "mounts": [_mount_key(m) for m in step.mounts], "config": state.config})
        shown = " ".join(process.args)
        if run_env and isinstance(step.command, str):
            shown = f"|{len(run_env)} " + " ".join(f"{k}={v}" for k, v in sorted(run_env.items())) + " " + shown
        if await self._cached(state, key, step.original, shown):
            return
        lease = await self.lease.id()
        layer, container, snapshotter = await self.run_step.execute(
            state, step, process, {**state.scope.proxy_env(), **run_env}, self.options, self.context, self.progress,
            lease)
        await self.steps.commit(state, key, step.original, shown, layer=layer, lease=lease,
                                container=container, container_cmd=process.args, snapshotter=snapshotter)

    async def _copy(self, state: StageState, step: ins.Copy, image_source: ImageSource) -> None:
        prepared = await self.copy_files.prepare(state, step, image_source, self.context)
        async with prepared:
            key = step_key(state.image_id, {"kind": step.keyword, "sums": prepared.sums, "dest": prepared.dest,
                                            "owner": prepared.owner_key, "link": step.link, "config": state.config})
            created_by = f"{NOP}{step.keyword} {prepared.summary} in {prepared.dest} "
            if await self._cached(state, key, step.original, created_by):
                return
            lease = await self.lease.id()
            layer = await prepared.layer(state, lease)
        await self.steps.commit(state, key, step.original, created_by, layer=layer, lease=lease)

    async def _workdir(self, state: StageState, step: ins.Workdir) -> None:
        path = str(state.config.get("WorkingDir") or "/")
        key = step_key(state.image_id, {"kind": "workdir", "path": path, "config": state.config})
        if await self._cached(state, key, step.original, f"{NOP} WORKDIR {path}"):
            return
        layer: NewLayer | None = None
        lease = await self.lease.id()
        if posixpath.normpath(path) != "/":
            layer = await self.copy_files.make_dir(state, path, lease)
        await self.steps.commit(state, key, step.original, f"{NOP} WORKDIR {path}", layer=layer, lease=lease)


def _mount_key(mount: Mount) -> dict[str, Any]:
    # A cache mount's contents never make a step's result differ: only where and how it is mounted.
    return {"type": mount.type.value, "target": mount.target, "source": mount.source, "from": mount.from_,
            "id": mount.id, "readonly": mount.readonly, "sharing": mount.sharing.value}



def _is_step_result(state: StageState, source: LocalImage) -> bool:
    """`source` is exactly what this step makes: one history entry more than the stage's image, same config."""
    ours = len((state.image.config.get("history") if state.image is not None else None) or [])
    return len(source.config.get("history") or []) == ours + 1 and (source.config.get("config") or {}) == state.config
