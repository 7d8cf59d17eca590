"""`docker build`: a Dockerfile's stages built into an image, the classic builder API's way.

BuildKit's rules decide what is built: only the stages the target needs, and stages that do not
depend on each other at the same time. Their output is still the classic builder's stream,
numbered in order: each stage's messages are held until the stages before it have printed theirs.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from engine.builder import dockerfile as df
from engine.builder.cache import BuildCache
from engine.builder.context import BuildContext
from engine.builder.copy_files import CopyFiles
from engine.builder.dockerfile import instructions as ins
from engine.builder.dockerfile.parser import warnings_text
from engine.builder.dockerfile.stages import lookup_stage
from engine.builder.options import BuildOptions
from engine.builder.progress import BuildProgress
from engine.builder.run_step import RunStep
from engine.builder.stage import StageRunner, StepCounter
from engine.builder.state import StageState
from engine.errors import InvalidArgument
from engine.images import platforms
from engine.images.lookup import NoSuchImage
from engine.images.model import DANGLING_PREFIX, LocalImage
from engine.builder.squash import SquashRuntime, squash
from engine.images.pull import RegistryAuth, pull
from engine.images.store import ImageService
from engine.images.writer import ImageWriter, LazyLease
from runtime.client.reference import familiar, parse


@dataclass
class _Stage:
    index: int
    progress: BuildProgress
    done: asyncio.Future[LocalImage | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Builder:
    def __init__(self, images: ImageService, writer: ImageWriter, cache: BuildCache, run_step: RunStep,
                 copy_files: CopyFiles, runtime: SquashRuntime) -> None:
        self.images = images
        self.runtime = runtime
        self.writer = writer
        self.cache = cache
        self.run_step = run_step
        self.copy_files = copy_files

    def plan(self, context: BuildContext, options: BuildOptions) -> tuple[ins.Dockerfile, df.BuildPlan, dict[str, str]]:
        """Parse and plan before the stream starts, so a bad Dockerfile or target is a plain 400."""
        dockerfile = df.parse_dockerfile(context.dockerfile)
        wanted = options.platform or platforms.host()
        host = platforms.host()
        meta = {"TARGETPLATFORM": str(wanted), "TARGETOS": wanted.os, "TARGETARCH": wanted.architecture,
                "TARGETVARIANT": wanted.variant, "BUILDPLATFORM": str(host), "BUILDOS": host.os,
                "BUILDARCH": host.architecture, "BUILDVARIANT": host.variant}
        scope = df.global_scope(dockerfile.global_args, options.build_args, meta, dockerfile.escape)
        return dockerfile, df.plan(dockerfile, options.target, scope), scope

    async def build(self, context: BuildContext, options: BuildOptions, progress: BuildProgress,
                    auths: dict[str, RegistryAuth]) -> str:
        dockerfile, plan, scope = self.plan(context, options)
        if warnings := warnings_text(dockerfile.warnings):
            await progress.text(warnings)
        extra = self._label_step(options)
        # The classic builder counts the ARGs before the first FROM as steps of their own.
        meta = len(dockerfile.global_args)
        total = meta + sum(1 + len(dockerfile.stages[i].instructions) for i in plan.order) + len(extra)
        for index, arg in enumerate(dockerfile.global_args, 1):
            await progress.step(index, total, arg.original)
        stages = {i: _Stage(i, BuildProgress(limit=0)) for i in plan.order}  # the build's own holds back with q
        pulls: dict[str, asyncio.Task[LocalImage]] = {}
        cache_sources = await self._cache_sources(options)
        current_stage: contextvars.ContextVar[int] = contextvars.ContextVar("stage")
        first_step = {}
        bases: dict[int, LocalImage | None] = {}  # each stage's FROM image, which a squash keeps
        number = meta
        for i in plan.order:
            first_step[i] = number
            number += 1 + len(dockerfile.stages[i].instructions)

        async def image_source(name: str, line: int) -> LocalImage:
            index = lookup_stage(dockerfile, name, by_index=True)
            if index is not None and index in stages:
                image = await stages[index].done
                if image is None:
                    raise InvalidArgument(f"line {line}: stage {name} has no files to copy from (FROM scratch)")
                return image
            return await self._base(name, "", options, auths, stages[current_stage.get()].progress, pulls)

        async def run_stage(i: int, lease: LazyLease) -> None:
            stage = dockerfile.stages[i]
            out = stages[i].progress
            try:
                counter = StepCounter(first_step[i], total)
                state = StageState(i, stage.name, df.StageScope(scope, options.build_args, None, dockerfile.escape),
                                   dockerfile.escape)
                counter.number += 1
                await out.step(counter.number, total, stage.from_.original if stage.from_ else f"FROM {stage.base}")
                current_stage.set(i)
                await self._start(state, plan.base[i], plan.platform[i], dockerfile, stages, options, auths, out,
                                  pulls)
                bases[i] = state.image
                runner = StageRunner(self.writer, self.cache, self.run_step, self.copy_files, options, context,
                                     out, lease, counter, cache_sources)
                await self._onbuild(runner, state, image_source, out)
                await runner.run(state, stage.instructions + (extra if i == plan.target.index else []), image_source)
                stages[i].done.set_result(state.image)
            except BaseException as e:
                if not stages[i].done.done():
                    # A cancelled build (its client gone) cancels the stages waiting on this one, quietly.
                    if isinstance(e, asyncio.CancelledError):
                        stages[i].done.cancel()
                    else:
                        stages[i].done.set_exception(e)
                raise
            finally:
                out.close()

        # One lease for the build's writes, taken by the first step that writes: none on a fully cached build.
        async with self.writer.lazy_lease() as lease:
            tasks = [asyncio.create_task(run_stage(i, lease)) for i in plan.order]
            try:
                for i in plan.order:
                    async for message in stages[i].progress.messages():
                        await progress.put(message)
                    await stages[i].done
                final = await stages[plan.target.index].done
            finally:
                for task in [*tasks, *pulls.values()]:
                    task.cancel()
                await asyncio.gather(*tasks, *pulls.values(), return_exceptions=True)
                # A stage that failed after the build had already failed elsewhere: its error is that one's echo.
                for stage in stages.values():
                    if stage.done.done() and not stage.done.cancelled():
                        stage.done.exception()
        if final is None:
            raise InvalidArgument("the build produced no image: the target stage is FROM scratch with no steps")
        unused = df.unused_build_args_warning(df.unused_build_args(options.build_args, plan.declared))
        if unused:
            await progress.text(unused)
        if options.squash:
            final = (await self.images.get((await squash(self.runtime, self.writer, final,
                                                         bases[plan.target.index])).id)).image
        tags = await self._tag(final, options)
        await progress.built(final.id, tags)
        return final.id

    async def _cache_sources(self, options: BuildOptions) -> list[LocalImage]:
        """The `cachefrom` images present here; one that is not is no source, as with dockerd (no pull)."""
        out = []
        for name in options.cache_from:
            with contextlib.suppress(NoSuchImage):
                out.append((await self.images.get(name)).image)
        return out

    @staticmethod
    def _label_step(options: BuildOptions) -> list[ins.Instruction]:
        """The build's labels, added as dockerd does: a LABEL step per label, by name, at the end of the target
        stage."""
        return [ins.Label(keyword="LABEL", original=f"LABEL {k}={v}", start_line=0, end_line=0,
                          pairs=((json.dumps(k), json.dumps(v)),))
                for k, v in sorted(options.labels.items())]

    async def _start(self, state: StageState, base: str, platform: str, dockerfile: ins.Dockerfile,
                     stages: dict[int, _Stage], options: BuildOptions, auths: dict[str, RegistryAuth],
                     out: BuildProgress, pulls: dict[str, asyncio.Task[LocalImage]]) -> None:
        index = lookup_stage(dockerfile, base, by_index=False, before=state.index)
        if base == "scratch":
            image = None
        elif index is not None:
            image = await stages[index].done
        else:
            image = await self._base(base, platform, options, auths, out, pulls)
        state.platform = (platforms.parse(platform) if platform else options.platform or platforms.host()).as_config()
        state.start_from(image)
        if image is not None:
            await out.result(image.id)

    async def _onbuild(self, runner: StageRunner, state: StageState,
                       image_source: Callable[[str, int], Awaitable[LocalImage]], out: BuildProgress) -> None:
        triggers = list(state.config.get("OnBuild") or [])
        if not triggers:
            return
        await out.text(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
        state.config["OnBuild"] = None
        for trigger in triggers:
            parsed = df.parse_dockerfile(f"FROM scratch\n{trigger}").stages[0].instructions
            for instruction in parsed:
                await runner.execute(state, instruction, image_source)

    async def _base(self, name: str, platform: str, options: BuildOptions, auths: dict[str, RegistryAuth],
                    out: BuildProgress, pulls: dict[str, asyncio.Task[LocalImage]]) -> LocalImage:
        """A base or --from image: the local one, or pulled when missing (or always, with `pull`); stages
        of one build that need the same image share one pull (its progress shows in the first's output)."""
        key = f"{name}|{platform}"
        if key not in pulls:
            pulls[key] = asyncio.create_task(self._fetch_base(name, platform, options, auths, out))
        return await asyncio.shield(pulls[key])

    async def _fetch_base(self, name: str, platform: str, options: BuildOptions, auths: dict[str, RegistryAuth],
                          out: BuildProgress) -> LocalImage:
        wanted = platform or (str(options.platform) if options.platform else "")
        if not options.pull:
            try:
                return (await self.images.get(name)).image
            except NoSuchImage:
                pass
        ref = parse(name)
        auth = auths.get(ref.domain) or auths.get(f"https://{ref.domain}") or (
            auths.get("https://index.docker.io/v1/") if ref.domain == "docker.io" else None)
        messages = pull(self.images, ref, platform=wanted or None, auth=auth)
        try:
            async for message in messages:
                await out.put(message)
        finally:
            await messages.aclose()
        return (await self.images.get(str(ref))).image

    async def _tag(self, image: LocalImage, options: BuildOptions) -> list[str]:
        shown = []
        for tag in options.tags:
            ref = parse(tag)
            await self.images.tag_image(image, ref.name, ref.tag or "latest")
            shown.append(familiar(ref))
        if not shown and image.dangling:
            # The step's image knows the names of its own manifest only; another may name the same ID.
            image = next((i for i in await self.images.images() if i.id == image.id), image)
        if not shown and image.dangling and not any(r.name.startswith(DANGLING_PREFIX) for r in image.records):
            # An untagged result shows in `docker images` as <none>, as dockerd's does.
            await self.writer.runtime.put_image(DANGLING_PREFIX + image.manifest_digest,
                                                dict(image.records[0].target))
        return shown
