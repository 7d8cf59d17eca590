"""The typed instructions the executor consumes.

Words are kept as written (quotes and `$` references included) wherever Docker substitutes variables
at build time: the executor expands them with `lexer.expand`/`expand_words` and the environment in force
at that step (`scope.StageScope.env`). `command` is the exec form (a list, from a JSON array of strings)
or the shell form (the text, run by the stage's SHELL); RUN, CMD and ENTRYPOINT are never expanded here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.builder.dockerfile.mounts import Mount
from engine.builder.dockerfile.parser import Heredoc

Command = str | list[str]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    original: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class From(Instruction):
    image: str
    name: str = ""
    platform: str = ""


@dataclass(frozen=True)
class Run(Instruction):
    command: Command
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: str = "default"


@dataclass(frozen=True)
class Cmd(Instruction):
    command: Command


@dataclass(frozen=True)
class Entrypoint(Instruction):
    command: Command


@dataclass(frozen=True)
class Env(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ArgDecl:
    name: str
    default: str | None = None


@dataclass(frozen=True)
class Arg(Instruction):
    args: tuple[ArgDecl, ...]


@dataclass(frozen=True)
class Expose(Instruction):
    ports: tuple[str, ...]


@dataclass(frozen=True)
class Volume(Instruction):
    paths: tuple[str, ...]


@dataclass(frozen=True)
class User(Instruction):
    user: str


@dataclass(frozen=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True)
class StopSignal(Instruction):
    signal: str


@dataclass(frozen=True)
class Maintainer(Instruction):
    name: str


@dataclass(frozen=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True)
class Copy(Instruction):
    """COPY and ADD (`keyword` says which). `contents` are the heredoc sources (`COPY <<EOF /dst`)."""

    sources: tuple[str, ...]
    dest: str
    contents: tuple[Heredoc, ...] = ()
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    checksum: str = ""


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """`test` is Docker's Healthcheck.Test: ["NONE"], ["CMD", args...] or ["CMD-SHELL", text]."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class OnBuild(Instruction):
    """`expression` is what goes into the image's OnBuild list; `trigger` is it parsed."""

    expression: str
    trigger: Instruction


@dataclass
class Stage:
    index: int
    base: str
    name: str = ""
    platform: str = ""
    from_: From | None = None
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    """Global ARGs (before the first FROM), then the stages; `escape` is the lexer's escape token."""

    global_args: list[Arg]
    stages: list[Stage]
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
