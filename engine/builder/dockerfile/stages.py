"""Which stages a build needs, in what order, and which can run side by side (BuildKit's behaviour).

The target (the last stage when none is named) and everything it reaches are built; other stages
are skipped. A stage reaches another through its FROM (a stage name), `COPY --from` (a name or an
index) and `RUN --mount ... from=`; those expressions are expanded with the global scope first. Any
other reference is an image for the executor to pull. FROM names only earlier stages (so
`FROM alpine AS alpine` is the image); a `--from` may name a later stage as long as there is no cycle.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.builder.dockerfile.errors import DockerfileError, SubstitutionError
from engine.builder.dockerfile.instructions import Arg, Copy, Dockerfile, Run, Stage
from engine.builder.dockerfile.lexer import expand


@dataclass
class StageNeeds:
    stages: set[int] = field(default_factory=set)
    images: set[str] = field(default_factory=set)


@dataclass
class BuildPlan:
    """`order`: the needed stages, each after those it depends on; `deps[i]`: what stage i waits for;
    `base[i]`: its base, expanded (an image reference, "scratch", or the name of the stage it builds on);
    `images[i]`: the images it needs (its base when that is an image, those its `--from`s name);
    `platform[i]`: its `--platform`, expanded ("" when not given);
    `declared`: the ARG names of the built stages and the global ones."""

    target: Stage
    order: list[int]
    deps: dict[int, frozenset[int]]
    base: dict[int, str]
    images: dict[int, frozenset[str]]
    platform: dict[int, str]
    declared: set[str]


def find_target(dockerfile: Dockerfile, target: str = "") -> Stage:
    if not target:
        return dockerfile.stages[-1]
    for stage in dockerfile.stages:
        if stage.name and stage.name == target.lower():
            return stage
    raise DockerfileError(f'target stage "{target}" could not be found')


def lookup_stage(dockerfile: Dockerfile, ref: str, by_index: bool, before: int | None = None) -> int | None:
    lowered = ref.lower()
    for stage in dockerfile.stages[:before]:
        if stage.name and stage.name == lowered:
            return stage.index
    if by_index and ref.isdigit():
        index = int(ref)
        if index >= len(dockerfile.stages):
            raise DockerfileError(f"invalid from flag value {ref}: stage index out of range")
        return index
    return None


def _expand(word: str, env: Mapping[str, str], escape: str, line: int) -> str:
    try:
        return expand(word, env, escape)
    except SubstitutionError as err:
        raise DockerfileError(err.message, line) from None


def stage_needs(dockerfile: Dockerfile, stage: Stage, meta: Mapping[str, str]) -> tuple[str, StageNeeds]:
    """The stage's expanded base and what it needs: stages (by index) and images."""
    needs = StageNeeds()
    line = stage.from_.start_line if stage.from_ else 0
    base = _expand(stage.base, meta, dockerfile.escape, line)
    if not base:
        raise DockerfileError("base name (" + stage.base + ") should not be blank", line)
    ref = lookup_stage(dockerfile, base, by_index=False, before=stage.index)
    if ref is not None:
        needs.stages.add(ref)
    elif base != "scratch":
        needs.images.add(base)
    for instruction in stage.instructions:
        froms: list[str] = []
        if isinstance(instruction, Copy) and instruction.from_:
            froms.append(instruction.from_)
        elif isinstance(instruction, Run):
            froms.extend(m.from_ for m in instruction.mounts if m.from_)
        for expression in froms:
            value = _expand(expression, meta, dockerfile.escape, instruction.start_line)
            index = lookup_stage(dockerfile, value, by_index=True)
            if index is None:
                needs.images.add(value)
            elif index == stage.index:
                raise DockerfileError(f"circular dependency detected on stage: {stage.name or index}",
                                      instruction.start_line)
            else:
                needs.stages.add(index)
    return base, needs


def plan(dockerfile: Dockerfile, target: str, meta: Mapping[str, str]) -> BuildPlan:
    """The stages to build for `target` (meta: `scope.global_scope(...)`)."""
    chosen = find_target(dockerfile, target)
    deps: dict[int, frozenset[int]] = {}
    bases: dict[int, str] = {}
    images: dict[int, frozenset[str]] = {}
    platforms: dict[int, str] = {}
    order: list[int] = []
    visiting: set[int] = set()

    def visit(index: int) -> None:
        if index in deps:
            return
        stage = dockerfile.stages[index]
        if index in visiting:
            raise DockerfileError(f"circular dependency detected on stage: {stage.name or index}")
        visiting.add(index)
        base, needs = stage_needs(dockerfile, stage, meta)
        for dep in sorted(needs.stages):
            visit(dep)
        visiting.discard(index)
        deps[index] = frozenset(needs.stages)
        bases[index] = base
        images[index] = frozenset(needs.images)
        line = stage.from_.start_line if stage.from_ else 0
        platforms[index] = _expand(stage.platform, meta, dockerfile.escape, line)
        order.append(index)

    visit(chosen.index)
    declared = {d.name for arg in dockerfile.global_args for d in arg.args}
    for index in order:
        for instruction in dockerfile.stages[index].instructions:
            if isinstance(instruction, Arg):
                declared.update(d.name for d in instruction.args)
    return BuildPlan(chosen, order, deps, bases, images, platforms, declared)


def check_stage_names(dockerfile: Dockerfile) -> None:
    """Two stages may not share a name (BuildKit refuses; the legacy builder silently took the last)."""
    seen: set[str] = set()
    for stage in dockerfile.stages:
        if stage.name in seen:
            line = stage.from_.start_line if stage.from_ else None
            raise DockerfileError(f'duplicate stage name "{stage.name}"', line)
        if stage.name:
            seen.add(stage.name)
