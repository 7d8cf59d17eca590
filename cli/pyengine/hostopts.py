"""The host-side container options the docker CLI checks and reshapes before sending them.

Capabilities, devices, ulimits, sysctls, extra hosts, DNS, security options, namespace modes,
logging and the env/label files: each becomes the value docker sends for it, and a value docker
refuses is refused here with docker's words and exit code 125.
"""
from __future__ import annotations

import os
import re
from typing import Any

from cli.pyengine.api import CLIError
from cli.pyengine.runopts import ram_in_bytes

USAGE = 125
_ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
            "rtprio", "rttime", "sigpending", "stack")
# The sysctls that are namespaced, hence allowed in a container (docker's client-side list).
_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
            "kernel.shmmni", "kernel.shm_rmid_forced")
_SYSCTL_PREFIXES = ("net.", "fs.mqueue.")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
                     r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*\.?\s*")


def _flag_error(flag: str, value: str, why: str) -> CLIError:
    return CLIError(f'invalid argument "{value}" for "{flag}" flag: {why}', USAGE)


def capabilities(names: list[str] | None) -> list[str] | None:
    """Capability names as docker sends them: upper case, CAP_-prefixed (but ALL), sorted, once each."""
    if not names:
        return None
    normal = {n.upper() if n.upper() == "ALL" or n.upper().startswith("CAP_") else "CAP_" + n.upper()
              for n in names}
    return sorted(normal)


def _valid_device_mode(mode: str) -> bool:
    return bool(mode) and len(set(mode)) == len(mode) and set(mode) <= set("rwm")


def device(spec: str) -> dict[str, str]:
    """--device HOST[:CONTAINER][:PERMISSIONS] as a HostConfig.Devices entry."""
    parts = spec.split(":")
    if len(parts) > 3 or not parts[0]:
        raise CLIError(f"bad format for path: {spec}", USAGE)
    if not parts[0].startswith("/") and "=" in parts[0]:
        raise CLIError(f"--device {spec}: CDI devices are not supported by this CLI", USAGE)
    host, target, mode = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if _valid_device_mode(parts[1]):
            mode = parts[1]
        else:
            target = parts[1]
    elif len(parts) == 3:
        target, mode = parts[1], parts[2]
        if not _valid_device_mode(mode):
            raise CLIError(f"bad mode specified: {mode}", USAGE)
    if not target.startswith("/"):
        raise CLIError(f"{target} is not an absolute path", USAGE)
    return {"PathOnHost": host, "PathInContainer": target, "CgroupPermissions": mode}


def _limit(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise ValueError(text)
    return int(text)


def ulimits(specs: list[str] | None) -> list[dict[str, Any]]:
    """--ulimit NAME=SOFT[:HARD], the last one per name, sorted by name as docker sends them."""
    found: dict[str, dict[str, Any]] = {}
    for spec in specs or []:
        name, eq, limits = spec.partition("=")
        if not eq:
            raise _flag_error("--ulimit", spec, f"invalid ulimit argument: {spec}")
        if name not in _ULIMITS:
            raise _flag_error("--ulimit", spec, f"invalid ulimit type: {name}")
        soft_text, colon, hard_text = limits.partition(":")
        try:
            soft = _limit(soft_text)
            hard = _limit(hard_text) if colon else soft
        except ValueError as e:
            raise _flag_error("--ulimit", spec, f'strconv.ParseInt: parsing "{e}": invalid syntax') from None
        if soft > hard:
            raise _flag_error("--ulimit", spec,
                              f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        found[name] = {"Name": name, "Hard": hard, "Soft": soft}
    return [found[n] for n in sorted(found)]


def sysctls(specs: list[str] | None) -> dict[str, str] | None:
    out = {}
    for spec in specs or []:
        key, eq, value = spec.partition("=")
        if not eq or not (key in _SYSCTLS or key.startswith(_SYSCTL_PREFIXES)):
            raise _flag_error("--sysctl", spec, f"sysctl '{spec}' is not allowed")
        out[key] = value
    return out or None


def _ip(flag: str, text: str) -> str:
    # Only a command line with --dns or --add-host pays for the module.
    import ipaddress

    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise _flag_error(flag, text, f"IP address is not correctly formatted: {text}") from None


def extra_hosts(specs: list[str] | None) -> list[str] | None:
    """--add-host NAME:IP or NAME=IP (IPv6 bare or in brackets, or host-gateway) as NAME:IP."""
    out = []
    for spec in specs or []:
        sep = "=" if "=" in spec else ":"
        name, found, address = spec.partition(sep)
        if not found or not name:
            raise _flag_error("--add-host", spec, f'bad format for add-host: "{spec}"')
        address = address.removeprefix("[").removesuffix("]")
        if address != "host-gateway":
            _ip("--add-host", address)
        out.append(f"{name}:{address}")
    return out or None


def dns_servers(specs: list[str] | None) -> list[str]:
    return [_ip("--dns", s) for s in specs or []]


def dns_search(specs: list[str] | None) -> list[str]:
    for domain in specs or []:
        if domain != "." and (len(domain) > 255 or not _DOMAIN.fullmatch(domain)):
            raise _flag_error("--dns-search", domain, f"{domain} is not a valid domain")
    return specs or []


def _compact_json(text: str) -> str:
    """Go's json.Compact: the JSON text without the insignificant whitespace, literals untouched."""
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            out.append(ch)
            in_string = escaped or ch != '"'
            escaped = not escaped and ch == "\\"
        elif ch not in " \t\r\n":
            out.append(ch)
            in_string = ch == '"'
    return "".join(out)


def security_options(specs: list[str] | None) -> tuple[list[str] | None, bool]:
    """HostConfig.SecurityOpt as docker sends it (a seccomp profile file by its content), and whether
    `systempaths=unconfined` asked for no masked or read-only paths."""
    out, unconfined_paths = [], False
    for opt in specs or []:
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
        if (not sep or not value) and key != "no-new-privileges":
            raise CLIError(f'Invalid --security-opt: "{opt}"', USAGE)
        if key == "systempaths" and value == "unconfined":
            unconfined_paths = True
            continue
        if key == "seccomp" and value not in ("builtin", "unconfined"):
            try:
                with open(value, encoding="utf-8") as f:
                    profile = f.read()
            except OSError as e:
                raise CLIError(f"opening seccomp profile ({value}) failed: open {value}: "
                               f"{(e.strerror or str(e)).lower()}", USAGE) from None
            opt = f"seccomp={_compact_json(profile)}"
        out.append(opt)
    return (out if out or unconfined_paths else None), unconfined_paths


def namespace_modes(ipc: str | None, pid: str | None, uts: str | None) -> dict[str, str]:
    """--ipc, --pid and --uts, checked as the docker CLI checks them (the daemon decides what it supports)."""
    def joins(mode: str) -> bool:
        return mode.startswith("container:") and len(mode) > len("container:")

    if ipc and not (ipc in ("none", "private", "shareable", "host") or joins(ipc)):
        raise CLIError("--ipc: invalid IPC mode", USAGE)
    if pid and not (pid == "host" or joins(pid)):
        raise CLIError("--pid: invalid PID mode", USAGE)
    if uts and uts != "host":
        raise CLIError("--uts: invalid UTS mode", USAGE)
    return {"IpcMode": ipc or "", "PidMode": pid or "", "UTSMode": uts or ""}


def log_config(driver: str | None, options: list[str] | None) -> dict[str, Any]:
    if driver == "none" and options:
        raise CLIError("invalid logging opts for driver none", USAGE)
    config = dict((k, v) for k, _, v in (o.partition("=") for o in options or []))
    return {"Type": driver or "", "Config": config}


def read_kv_file(path: str, from_environment: bool, exit_code: int = USAGE) -> list[str]:
    """An --env-file or --label-file: KEY=VALUE lines taken as they are (quotes and trailing blanks kept),
    blank and # lines skipped; a bare KEY takes our environment's value (env files) or is dropped. A file
    that cannot be read fails with `exit_code` (docker's exec: 1, its run and create: 125)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise CLIError(f"open {path}: no such file or directory", exit_code) from None
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"invalid env file ({path}): {e}", exit_code) from None
    out = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if any(ch.isspace() for ch in name):
            raise CLIError(f"invalid env file ({path}): variable '{name}' contains whitespaces", exit_code)
        if eq:
            out.append(f"{name}={value}")
        elif from_environment and name in os.environ:
            out.append(f"{name}={os.environ[name]}")
    return out


def memory_swap(value: str) -> int:
    """--memory-swap: a size, or -1 for unlimited swap."""
    return -1 if value.strip() == "-1" else ram_in_bytes(value)
