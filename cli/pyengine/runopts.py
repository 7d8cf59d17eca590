"""The container options the docker CLI parses itself: -p, --expose, -v, --mount, --tmpfs and sizes.

The daemon gets what docker sends (ExposedPorts, HostConfig.PortBindings, Binds, Mounts and Tmpfs,
Config.Volumes), and a spec docker refuses is refused here with docker's words and exit code 125.
"""
from __future__ import annotations

import os
import re
from typing import Any

from cli.pyengine.api import CLIError

USAGE = 125
_PROTOCOLS = ("tcp", "udp", "sctp")
GO_BOOLS = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
             "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}


def ram_in_bytes(value: str) -> int:
    """go-units RAMInBytes: 512m, 1g, 1.5G, 1024 (bytes), in binary multiples."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?) ?([bkmgtp])?i?b?", value.strip().lower())
    if m is None:
        raise ValueError(f"invalid size: {value!r}")
    return int(float(m.group(1)) * 1024 ** "bkmgtp".index(m.group(2) or "b"))


def parse_uint(text: str, limit: int, base: int = 10) -> int:
    """Go's strconv.ParseUint: digits only, no sign, no spaces."""
    if not re.fullmatch(r"[0-7]+" if base == 8 else r"[0-9]+", text) or int(text, base) > limit:
        raise ValueError(f"invalid number {text!r}")
    return int(text, base)


def _port_range(text: str) -> tuple[int, int]:
    """go-connections ParsePortRange: "80" or "8000-8010"."""
    start, dash, end = text.partition("-")
    first = parse_uint(start, 0xFFFF)
    last = parse_uint(end, 0xFFFF) if dash else first
    if last < first:
        raise ValueError(f"invalid range specified for the Port: {text}")
    return first, last


def _split_proto(raw: str) -> tuple[str, str]:
    """go-connections SplitProtoPort: "80/udp" → ("udp", "80"); tcp when no protocol is given."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _valid_ip(text: str) -> bool:
    # Only a command line with an address in -p pays for the module.
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text


def _long_publish(spec: str) -> str:
    """The long syntax (target=80,published=8080,protocol=udp) in the short one."""
    params = {"protocol": "tcp"}
    for param in spec.split(","):
        key, eq, value = param.partition("=")
        if not eq or not key:
            raise CLIError(f"invalid publish opts format (should be name=value but got '{param}')", USAGE)
        params[key] = value
    if "target" not in params:
        raise CLIError("missing required 'target' for --publish", USAGE)
    return f"{params.get('published', '')}:{params['target']}/{params['protocol']}"


def _port_spec(raw: str) -> list[tuple[str, dict[str, str]]]:
    """go-connections ParsePortSpec: [ip:][hostPort:]containerPort[/proto], ports or ranges."""
    parts = raw.split(":")
    container = parts[-1]
    ip = ":".join(parts[:-2])
    host = parts[-2] if len(parts) > 1 else ""
    proto, container = _split_proto(container)
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise CLIError(f"invalid IP address {ip}: missing ']' in address", USAGE)
        ip = ip[1:-1]
    if ip and not _valid_ip(ip):
        raise CLIError(f"invalid IP address: {ip}", USAGE)
    if not container:
        raise CLIError(f"no port specified: {raw}<empty>", USAGE)
    try:
        start, end = _port_range(container)
    except ValueError:
        raise CLIError(f"invalid containerPort: {container}", USAGE) from None
    host_start = host_end = 0
    if host:
        try:
            host_start, host_end = _port_range(host)
        except ValueError:
            raise CLIError(f"invalid hostPort: {host}", USAGE) from None
        # A host range for a single container port is a range to pick a free port from.
        if end - start != host_end - host_start and end != start:
            raise CLIError(f"invalid ranges specified for container and host Ports: {container} and {host}",
                           USAGE)
    if proto.lower() not in _PROTOCOLS:
        raise CLIError(f"invalid proto: {proto}", USAGE)
    out = []
    for i in range(end - start + 1):
        host_port = str(host_start + i) if host else ""
        if start == end and host_start != host_end:
            host_port = f"{host_port}-{host_end}"
        out.append((f"{start + i}/{proto.lower()}", {"HostIp": ip, "HostPort": host_port}))
    return out


def ports(publish: list[str], expose: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, str]]]]:
    """-p and --expose as Config.ExposedPorts and HostConfig.PortBindings."""
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in publish:
        for port, binding in _port_spec(_long_publish(spec) if "=" in spec else spec):
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    for spec in expose:
        if ":" in spec:
            raise CLIError(f"invalid port format for --expose: {spec}", USAGE)
        proto, port = _split_proto(spec)
        try:
            start, end = _port_range(port)
        except ValueError as e:
            raise CLIError(f"invalid range format for --expose: {spec}, error: {e}", USAGE) from None
        for number in range(start, end + 1):
            exposed.setdefault(f"{number}/{proto}", {})
    return exposed, bindings


def _absolute(path: str) -> str:
    """The docker CLI makes ./relative (and .) host paths absolute; other relative ones reach the daemon as given."""
    return os.path.abspath(path) if path == "." or path.startswith("./") else path


def volumes(specs: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """-v as HostConfig.Binds (a host path or a volume name before the first colon) and Config.Volumes
    (a lone container path: an anonymous volume). The daemon judges the rest of each spec."""
    binds: list[str] = []
    anonymous: dict[str, dict[str, Any]] = {}
    for spec in dict.fromkeys(specs):
        source, colon, rest = spec.partition(":")
        # As compose's volume parser: one or two characters are a container path, whatever they are.
        if len(spec) > 2 and colon and source:
            binds.append(f"{_absolute(source)}:{rest}")
        else:
            anonymous[spec] = {}
    return binds, anonymous


def _go_bool(key: str, value: str, spec: str) -> bool:
    if value not in GO_BOOLS:
        raise _mount_error(spec, f"invalid value for {key}: {value}")
    return GO_BOOLS[value]


def _mount_error(spec: str, message: str) -> CLIError:
    return CLIError(f'invalid argument "{spec}" for "--mount" flag: {message}', USAGE)


def mount(spec: str) -> dict[str, Any]:
    """--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,...] as one of HostConfig.Mounts."""
    # Fields are CSV, so a quoted value may hold a comma.
    import csv

    fields = next(csv.reader([spec]), [])
    m: dict[str, Any] = {"Type": "volume"}
    options: dict[str, dict[str, Any]] = {}
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m["ReadOnly"] = True
            elif key == "volume-nocopy":
                options.setdefault("volume", {})["NoCopy"] = True
            else:
                raise _mount_error(spec, f"invalid field '{field}' must be a key=value pair")
        elif key == "type":
            m["Type"] = value.lower()
        elif key in ("source", "src"):
            m["Source"] = _absolute(value)
        elif key in ("target", "dst", "destination"):
            m["Target"] = value
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = _go_bool(key, value, spec)
        elif key == "bind-propagation":
            options.setdefault("bind", {})["Propagation"] = value.lower()
        elif key == "bind-recursive":
            # enabled: read-only means read-only all the way down where the daemon and kernel can (its default).
            recursive_flags = {"enabled": None, "disabled": "NonRecursive", "writable": "ReadOnlyNonRecursive",
                    "readonly": "ReadOnlyForceRecursive"}
            if value not in recursive_flags:
                raise _mount_error(spec, f'invalid value for {key}: {value} (must be "enabled", "disabled", '
                                         '"writable", or "readonly")')
            bind_flag = recursive_flags[value]
            if bind_flag:
                options.setdefault("bind", {})[bind_flag] = True
        elif key == "volume-nocopy":
            options.setdefault("volume", {})["NoCopy"] = _go_bool(key, value, spec)
        elif key == "volume-subpath":
            options.setdefault("volume", {})["Subpath"] = value
        elif key == "volume-driver":
            options.setdefault("volume", {}).setdefault("DriverConfig", {})["Name"] = value
        elif key in ("volume-label", "volume-opt"):
            # As docker's: `K=V`, or a bare `K` for an empty value; opts go in the driver's config.
            volume = options.setdefault("volume", {})
            into = volume.setdefault("Labels", {}) if key == "volume-label" else \
                volume.setdefault("DriverConfig", {}).setdefault("Options", {})
            name, _, setting = value.partition("=")
            into[name] = setting
        elif key == "tmpfs-size":
            try:
                options.setdefault("tmpfs", {})["SizeBytes"] = ram_in_bytes(value)
            except ValueError:
                raise _mount_error(spec, f"invalid value for {key}: {value}") from None
        elif key == "tmpfs-mode":
            try:
                options.setdefault("tmpfs", {})["Mode"] = parse_uint(value, 0xFFFFFFFF, 8)
            except ValueError:
                raise _mount_error(spec, f"invalid value for {key}: {value}") from None
        else:
            raise _mount_error(spec, f"unexpected key '{key}' in '{field}'")
    if not m["Type"]:
        raise _mount_error(spec, "type is required")
    if not m.get("Target"):
        raise _mount_error(spec, "target is required")
    bind = options.get("bind", {})
    for flag, value in (("ReadOnlyNonRecursive", "writable"), ("ReadOnlyForceRecursive", "readonly")):
        if bind.get(flag) and not m.get("ReadOnly"):
            raise _mount_error(spec, f"option 'bind-recursive={value}' requires 'readonly' to be specified in "
                                     "conjunction")
    if bind.get("ReadOnlyForceRecursive") and bind.get("Propagation") != "rprivate":
        raise _mount_error(spec, "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be "
                                 "specified in conjunction")
    for kind, values in options.items():
        if kind != m["Type"]:
            raise _mount_error(spec, f"cannot mix '{kind}-*' options with mount type '{m['Type']}'")
        m[f"{kind.capitalize()}Options"] = values
    return m


def tmpfs(specs: list[str]) -> dict[str, str]:
    """--tmpfs /path[:options] as HostConfig.Tmpfs."""
    return {path: options for path, _, options in (spec.partition(":") for spec in specs)}


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}


def duration_ns(value: str) -> int:
    """A Go duration ("200ms", "1m30s", "0") in nanoseconds, as the docker CLI sends --health-* times."""
    if value == "0":
        return 0
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise CLIError(f'invalid argument "{value}": time: invalid duration "{value}"', USAGE)
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def restart_policy(value: str) -> dict[str, Any]:
    name, _, count = value.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure") or (count and name != "on-failure"):
        raise CLIError(f"invalid restart policy {value!r}", USAGE)
    return {"Name": name, "MaximumRetryCount": parse_uint(count, 2**31 - 1) if count else 0}
