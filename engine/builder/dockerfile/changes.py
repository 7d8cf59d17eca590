"""`docker commit --change` / `docker import --change`: Dockerfile instructions applied to an image Config.

As dockerd: the changes are joined with newlines and parsed as a Dockerfile; only CMD, ENTRYPOINT, ENV,
EXPOSE, LABEL, ONBUILD, USER, VOLUME and WORKDIR may appear ("X is not a valid change command"),
checked before anything is applied. Words are expanded with the Config's own Env. The same
`apply_instruction` sets these fields for a build's steps.
"""
from __future__ import annotations

import copy
import posixpath
from collections.abc import Mapping
from typing import Any

from engine.builder.dockerfile import instructions as ins
from engine.builder.dockerfile.build import build_instruction
from engine.builder.dockerfile.errors import DockerfileError, SubstitutionError
from engine.builder.dockerfile.lexer import expand
from engine.builder.dockerfile.parser import parse

VALID_CHANGES = frozenset({"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "USER",
                           "VOLUME", "WORKDIR"})
DEFAULT_SHELL = ["/bin/sh", "-c"]


def env_map(config: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _command(config: Mapping[str, Any], command: ins.Command) -> list[str] | None:
    """The exec form as given (an empty one is null, as dockerd stores it), the shell form through the shell."""
    if isinstance(command, list):
        return list(command) or None
    return [*(config.get("Shell") or DEFAULT_SHELL), command]


def parse_ports(specs: list[str], line: int) -> list[str]:
    """EXPOSE's `80`, `80/udp`, `8000-8002/tcp` as ExposedPorts keys ("80/tcp")."""
    keys: list[str] = []
    for spec in specs:
        port, _, proto = spec.partition("/")
        # `[ip:]hostPort:containerPort` as `docker run -p` writes it: the image exposes the container's port.
        port = port.rsplit(":", 1)[-1]
        proto = (proto or "tcp").lower()
        low, _, high = port.partition("-")
        if proto not in ("tcp", "udp", "sctp"):
            raise DockerfileError(f"Invalid proto: {proto}", line)
        if not low.isdigit() or (high and not high.isdigit()):
            raise DockerfileError(f"Invalid containerPort: {port}", line)
        first, last = int(low), int(high or low)
        if last < first or last > 65535:
            raise DockerfileError(f"Invalid range specified for the Port: {spec}", line)
        keys.extend(f"{p}/{proto}" for p in range(first, last + 1))
    return keys


def healthcheck(instruction: ins.Healthcheck) -> dict[str, Any]:
    """The image config's Healthcheck: the durations and retries given, nothing for those left out."""
    check: dict[str, Any] = {"Test": list(instruction.test)}
    for field, value in (("Interval", instruction.interval), ("Timeout", instruction.timeout),
                         ("StartPeriod", instruction.start_period),
                         ("StartInterval", instruction.start_interval), ("Retries", instruction.retries)):
        if value:
            check[field] = value
    return check


def apply_instruction(config: dict[str, Any], instruction: ins.Instruction, env: Mapping[str, str],
                      escape: str = "\\", cmd_set: bool = False) -> None:
    """Sets the Config fields one of the valid change instructions sets (in place).

    `cmd_set`: whether a CMD was given earlier in this build/commit (an ENTRYPOINT clears Cmd otherwise).
    """
    line = instruction.start_line
    try:
        def x(word: str) -> str:
            return expand(word, env, escape)

        if isinstance(instruction, ins.Cmd):
            config["Cmd"] = _command(config, instruction.command)
        elif isinstance(instruction, ins.Entrypoint):
            config["Entrypoint"] = _command(config, instruction.command)
            if not cmd_set:
                config["Cmd"] = None
        elif isinstance(instruction, ins.Env):
            current = env_map(config)
            for key, value in instruction.pairs:
                current[x(key)] = x(value)
            config["Env"] = [f"{k}={v}" for k, v in current.items()]
        elif isinstance(instruction, ins.Label):
            labels = dict(config.get("Labels") or {})
            labels.update((x(k), x(v)) for k, v in instruction.pairs)
            config["Labels"] = labels
        elif isinstance(instruction, ins.Expose):
            ports = dict(config.get("ExposedPorts") or {})
            words = [w for p in instruction.ports for w in x(p).split()]
            ports.update((key, {}) for key in parse_ports(words, line))
            config["ExposedPorts"] = ports
        elif isinstance(instruction, ins.OnBuild):
            config["OnBuild"] = [*(config.get("OnBuild") or []), instruction.expression]
        elif isinstance(instruction, ins.User):
            config["User"] = x(instruction.user)
        elif isinstance(instruction, ins.Volume):
            volumes = dict(config.get("Volumes") or {})
            for path in instruction.paths:
                value = x(path)
                if not value.strip():
                    raise DockerfileError("VOLUME specified can not be an empty string", line)
                volumes[value] = {}
            config["Volumes"] = volumes
        elif isinstance(instruction, ins.Healthcheck):
            config["Healthcheck"] = healthcheck(instruction)
        elif isinstance(instruction, ins.Workdir):
            path = x(instruction.path)
            # dockerd keeps an absolute path as written (`/app/`), and joins a relative one to the current.
            config["WorkingDir"] = path if path.startswith("/") else posixpath.normpath(
                posixpath.join("/", config.get("WorkingDir") or "/", path))
        else:
            raise DockerfileError(f"{instruction.keyword} is not a valid change command", line)
    except SubstitutionError as err:
        raise DockerfileError(err.message, line) from None


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of the image's Config section with the changes applied; DockerfileError (400) if refused."""
    if not any(c.strip() for c in changes):
        return copy.deepcopy(config)
    try:
        parsed = parse("\n".join(changes))
        for raw in parsed.instructions:
            if raw.keyword not in VALID_CHANGES:
                raise DockerfileError(f"{raw.original.split(None, 1)[0].lower()} is not a valid change command")
        built = [build_instruction(raw, parsed.escape) for raw in parsed.instructions]
        out = copy.deepcopy(config)
        cmd_set = False
        for instruction in built:
            apply_instruction(out, instruction, env_map(out), parsed.escape, cmd_set)
            cmd_set = cmd_set or isinstance(instruction, ins.Cmd)
    except DockerfileError as e:
        # There is no Dockerfile: dockerd names no line of one.
        raise DockerfileError(e.reason) from None
    return out
