"""Raw instructions → typed ones, checked as BuildKit's instruction parser checks them, and stages.

Every error names the instruction's first line ("dockerfile parse error line N: ..."), in the words
dockerd's builder uses.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from engine.builder.dockerfile import instructions as ins
from engine.builder.dockerfile.errors import DockerfileError
from engine.builder.dockerfile.flags import Flags, health_duration, parse_flags
from engine.builder.dockerfile.mounts import MountType, parse_mount
from engine.builder.dockerfile.parser import RawInstruction, parse, parse_heredoc_marker, split_instruction
from engine.builder.dockerfile.stages import check_stage_names
from engine.builder.dockerfile.syntax import parse_json_array, parse_name_values, parse_words, split_whitespace

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_NETWORKS = frozenset({"default", "none", "host"})


class _Ctx:
    def __init__(self, raw: RawInstruction, escape: str) -> None:
        self.raw = raw
        self.escape = escape
        self.line = raw.start_line
        self.flags: Flags = parse_flags(raw.keyword, raw.flags, raw.start_line)

    def fail(self, message: str) -> DockerfileError:
        return DockerfileError(message, self.line)

    def base(self) -> tuple[str, str, int, int]:
        r = self.raw
        return r.keyword, r.original, r.start_line, r.end_line

    def command(self) -> ins.Command:
        return list(self.raw.json) if self.raw.json is not None else self.raw.args

    def one_argument(self) -> str:
        if not self.raw.args:
            raise self.fail(f"{self.raw.keyword} requires exactly one argument")
        return self.raw.args


def _from(c: _Ctx) -> ins.Instruction:
    words = split_whitespace(c.raw.args)
    if len(words) not in (1, 3):
        raise c.fail("FROM requires either one or three arguments")
    name = ""
    if len(words) == 3:
        if words[1].lower() != "as":
            raise c.fail('When using FROM with 3 arguments, second argument must be "AS"')
        name = words[2].lower()
        if not _STAGE_NAME.match(name):
            raise c.fail(f'invalid name for build stage: "{words[2]}", '
                         "name can't start with a number or contain symbols")
    return ins.From(*c.base(), image=words[0], name=name,
                    platform=c.flags.string("platform"))


def _run(c: _Ctx) -> ins.Instruction:
    if c.raw.json is None and not c.raw.args:
        raise c.fail("RUN requires at least one argument")
    ssh = 0
    mounts = []
    for value in c.flags.strings("mount"):
        mount = parse_mount(value, c.line, ssh)
        ssh += mount.type is MountType.SSH
        mounts.append(mount)
    network = c.flags.string("network", "default")
    if network not in _NETWORKS:
        raise c.fail(f"unsupported network mode {network!r}")
    security = c.flags.string("security", "sandbox")
    if security == "insecure":
        raise c.fail("RUN --security=insecure is not allowed: this builder grants no security.insecure")
    if security != "sandbox":
        raise c.fail(f"unsupported security mode {security!r}")
    return ins.Run(*c.base(), command=c.command(), heredocs=c.raw.heredocs,
                   mounts=tuple(mounts), network=network)


def _cmd(c: _Ctx) -> ins.Instruction:
    return ins.Cmd(*c.base(), command=c.command())


def _entrypoint(c: _Ctx) -> ins.Instruction:
    return ins.Entrypoint(*c.base(), command=c.command())


def _pairs(c: _Ctx) -> tuple[tuple[str, str], ...]:
    try:
        pairs = parse_name_values(c.raw.args, c.raw.keyword, c.escape)
    except DockerfileError as err:
        raise c.fail(err.reason) from None
    if not pairs:
        raise c.fail(f"{c.raw.keyword} requires at least one argument")
    if any(not key for key, _ in pairs):
        raise c.fail(f"{c.raw.keyword} names can not be blank")
    return tuple(pairs)


def _env(c: _Ctx) -> ins.Instruction:
    return ins.Env(*c.base(), pairs=_pairs(c))


def _label(c: _Ctx) -> ins.Instruction:
    return ins.Label(*c.base(), pairs=_pairs(c))


def _arg(c: _Ctx) -> ins.Instruction:
    words = parse_words(c.raw.args, c.escape)
    if not words:
        raise c.fail("ARG requires at least one argument")
    decls = []
    for word in words:
        name, has, default = word.partition("=")
        if not name:
            raise c.fail("ARG names can not be blank")
        decls.append(ins.ArgDecl(name, default if has else None))
    return ins.Arg(*c.base(), args=tuple(decls))


def _expose(c: _Ctx) -> ins.Instruction:
    ports = split_whitespace(c.raw.args)
    if not ports:
        raise c.fail("EXPOSE requires at least one argument")
    return ins.Expose(*c.base(), ports=tuple(ports))


def _volume(c: _Ctx) -> ins.Instruction:
    paths = c.raw.json if c.raw.json is not None else split_whitespace(c.raw.args)
    if not paths:
        raise c.fail("VOLUME requires at least one argument")
    if any(not p.strip() for p in paths):
        raise c.fail("VOLUME specified can not be an empty string")
    return ins.Volume(*c.base(), paths=tuple(paths))


def _user(c: _Ctx) -> ins.Instruction:
    return ins.User(*c.base(), user=c.one_argument())


def _workdir(c: _Ctx) -> ins.Instruction:
    return ins.Workdir(*c.base(), path=c.one_argument())


def _stopsignal(c: _Ctx) -> ins.Instruction:
    return ins.StopSignal(*c.base(), signal=c.one_argument())


def _maintainer(c: _Ctx) -> ins.Instruction:
    return ins.Maintainer(*c.base(), name=c.one_argument())


def _shell(c: _Ctx) -> ins.Instruction:
    if c.raw.json is None:
        if not c.raw.args:
            raise c.fail("SHELL requires at least one argument")
        raise c.fail("SHELL requires the arguments to be in JSON form")
    if not c.raw.json:
        raise c.fail("SHELL requires at least one argument")
    return ins.Shell(*c.base(), shell=tuple(c.raw.json))


def _copy(c: _Ctx) -> ins.Instruction:
    keyword = c.raw.keyword
    words = list(c.raw.json) if c.raw.json is not None else split_whitespace(c.raw.args)
    if len(words) < 2:
        raise c.fail(f"{keyword} requires at least two arguments, but only one was provided. "
                     "Destination could not be determined.")
    *sources, dest = words
    if c.raw.heredocs:
        sources = [s for s in sources if parse_heredoc_marker(s) is None]
    return ins.Copy(*c.base(), sources=tuple(sources), dest=dest, contents=c.raw.heredocs,
                    from_=c.flags.string("from"), chown=c.flags.string("chown"),
                    chmod=c.flags.string("chmod"), link=c.flags.boolean("link"),
                    checksum=c.flags.string("checksum"))


def _healthcheck(c: _Ctx) -> ins.Instruction:
    kind, rest = (c.raw.args.split(None, 1) + ["", ""])[:2]
    rest = rest.strip()
    if not kind:
        raise c.fail("HEALTHCHECK requires at least one argument")
    if kind.upper() == "NONE":
        if rest or c.raw.flags:
            raise c.fail("HEALTHCHECK NONE takes no arguments")
        return ins.Healthcheck(*c.base(), test=("NONE",))
    if kind.upper() != "CMD":
        raise c.fail(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    try:
        exec_form = parse_json_array(rest)
    except DockerfileError as err:
        raise c.fail(err.reason) from None
    if exec_form is not None:
        if not exec_form:
            raise c.fail("Missing command after HEALTHCHECK CMD")
        test = ("CMD", *exec_form)
    elif rest:
        test = ("CMD-SHELL", rest)
    else:
        raise c.fail("Missing command after HEALTHCHECK CMD")
    retries = 0
    if c.flags.string("retries"):
        try:
            retries = int(c.flags.string("retries"))
        except ValueError:
            raise c.fail(f'strconv.ParseInt: parsing "{c.flags.string("retries")}": invalid syntax') from None
        if retries < 0:
            raise c.fail(f"--retries cannot be negative ({retries})")
    return ins.Healthcheck(
        *c.base(), test=test,
        interval=health_duration(c.flags, "interval", c.line),
        timeout=health_duration(c.flags, "timeout", c.line),
        start_period=health_duration(c.flags, "start-period", c.line),
        start_interval=health_duration(c.flags, "start-interval", c.line), retries=retries)


def _onbuild(c: _Ctx) -> ins.Instruction:
    if not c.raw.args:
        raise c.fail("ONBUILD requires at least one argument")
    sub = split_instruction(c.raw.args, c.line, c.raw.end_line)
    if sub.keyword == "ONBUILD":
        raise c.fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if sub.keyword in ("FROM", "MAINTAINER"):
        raise c.fail(f"{sub.keyword} isn't allowed as an ONBUILD trigger")
    trigger = build_instruction(sub, c.escape)
    return ins.OnBuild(*c.base(), expression=c.raw.args, trigger=trigger)


BUILDERS: dict[str, Callable[[_Ctx], ins.Instruction]] = {
    "FROM": _from, "RUN": _run, "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "LABEL": _label,
    "ARG": _arg, "EXPOSE": _expose, "VOLUME": _volume, "USER": _user, "WORKDIR": _workdir,
    "STOPSIGNAL": _stopsignal, "MAINTAINER": _maintainer, "SHELL": _shell, "COPY": _copy, "ADD": _copy,
    "HEALTHCHECK": _healthcheck, "ONBUILD": _onbuild,
}


def build_instruction(raw: RawInstruction, escape: str = "\\") -> ins.Instruction:
    builder = BUILDERS.get(raw.keyword)
    if builder is None:
        raise DockerfileError(f"unknown instruction: {raw.keyword}", raw.start_line)
    return builder(_Ctx(raw, escape))


def parse_dockerfile(text: str) -> ins.Dockerfile:
    """The Dockerfile's global ARGs and stages; DockerfileError (a 400) on anything Docker refuses."""
    if not text.strip():
        raise DockerfileError("the Dockerfile (Dockerfile) cannot be empty")
    parsed = parse(text)
    global_args: list[ins.Arg] = []
    stages: list[ins.Stage] = []
    for raw in parsed.instructions:
        instruction = build_instruction(raw, parsed.escape)
        if isinstance(instruction, ins.From):
            stages.append(ins.Stage(index=len(stages), base=instruction.image, name=instruction.name,
                                    platform=instruction.platform, from_=instruction))
        elif not stages:
            if not isinstance(instruction, ins.Arg):
                raise DockerfileError("no build stage in current context", raw.start_line)
            global_args.append(instruction)
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileError("dockerfile contains no stages to build")
    dockerfile = ins.Dockerfile(global_args, stages, parsed.escape, parsed.directives, parsed.warnings)
    check_stage_names(dockerfile)
    return dockerfile
