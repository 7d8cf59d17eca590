"""The block I/O, cgroup, device-request, storage and namespace flags of run/create, as the docker CLI
checks them and the HostConfig fields it sends for them.

A value docker refuses is refused here with docker's words and exit code 125; what the daemon does not
support reaches it all the same, and its answer (a 400 naming the field) is the user's.
"""
from __future__ import annotations

import re
from typing import Any

from cli.pyengine.api import CLIError, Engine
from cli.pyengine.runopts import ram_in_bytes

USAGE = 125
_CGROUP_RULE = r"[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}"
# Flags the docker CLI refuses unless the daemon runs on Windows (checked against GET /_ping's OSType).
WINDOWS_ONLY = {"cpu_count": "--cpu-count", "cpu_percent": "--cpu-percent", "io_maxbandwidth": "--io-maxbandwidth",
                "io_maxiops": "--io-maxiops"}


def _flag_error(flag: str, value: str, why: str) -> CLIError:
    return CLIError(f'invalid argument "{value}" for "{flag}" flag: {why}', USAGE)


def _device_path(flag: str, spec: str) -> tuple[str, str]:
    path, colon, value = spec.partition(":")
    if not colon or not path:
        raise _flag_error(flag, spec, f"bad format: {spec}")
    if not path.startswith("/dev/"):
        raise _flag_error(flag, spec, f"bad format for device path: {spec}")
    return path, value


def weight_devices(specs: list[str] | None) -> list[dict[str, Any]]:
    """--blkio-weight-device /dev/X:WEIGHT (10 to 1000, or 0)."""
    out = []
    for spec in specs or []:
        path, value = _device_path("--blkio-weight-device", spec)
        weight = int(value) if value.isdigit() else -1
        if not 0 <= weight <= 0xFFFF or 0 < weight < 10 or weight > 1000:
            raise _flag_error("--blkio-weight-device", spec, f"invalid weight for device: {spec}")
        out.append({"Path": path, "Weight": weight})
    return out


def throttle_bps(flag: str, specs: list[str] | None) -> list[dict[str, Any]]:
    """--device-read-bps/--device-write-bps /dev/X:RATE[kb|mb|gb]."""
    out = []
    for spec in specs or []:
        path, value = _device_path(flag, spec)
        try:
            rate = ram_in_bytes(value)
        except ValueError:
            raise _flag_error(flag, spec, f"invalid rate for device: {spec}. The correct format is "
                                          "<device-path>:<number>[<unit>]. Number must be a positive integer. "
                                          "Unit is optional and can be kb, mb, or gb") from None
        out.append({"Path": path, "Rate": rate})
    return out


def throttle_iops(flag: str, specs: list[str] | None) -> list[dict[str, Any]]:
    """--device-read-iops/--device-write-iops /dev/X:RATE."""
    out = []
    for spec in specs or []:
        path, value = _device_path(flag, spec)
        if not value.isdigit() or int(value) >= 2 ** 64:
            raise _flag_error(flag, spec, f"invalid rate for device: {spec}. The correct format is "
                                          "<device-path>:<number>. Number must be a positive integer")
        out.append({"Path": path, "Rate": int(value)})
    return out


def blkio_weight(value: str | None) -> int:
    if value is None:
        return 0
    if not value.isdigit() or int(value) > 0xFFFF:
        raise _flag_error("--blkio-weight", value, f'strconv.ParseUint: parsing "{value}": '
                          + ("value out of range" if value.isdigit() else "invalid syntax"))
    return int(value)


def cgroup_rules(specs: list[str] | None) -> list[str] | None:
    for spec in specs or []:
        if not re.fullmatch(_CGROUP_RULE, spec):
            raise _flag_error("--device-cgroup-rule", spec, f"invalid device cgroup format '{spec}'")
    return specs or None


def _count(spec: str, text: str) -> int:
    if text == "all":
        return -1
    try:
        return int(text)
    except ValueError:
        raise _flag_error("--gpus", spec, f'invalid count ({text}): value must be either "all" or an integer: '
                                          "invalid syntax") from None


def gpu_request(spec: str) -> dict[str, Any]:
    """--gpus all|N|count=N,device=ID[,ID],driver=D,capabilities=C[,C],options=K=V as a DeviceRequest."""
    import csv  # only a command line with the flag pays for the module

    req: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": None, "Options": None}
    seen: set[str] = set()
    for item in next(csv.reader([spec]), []):
        key, eq, value = item.partition("=")
        if key in seen:
            raise _flag_error("--gpus", spec, f"gpu request key '{key}' can be specified only once")
        seen.add(key)
        if not eq:
            seen.add("count")
            req["Count"] = _count(spec, key)
        elif key == "driver":
            req["Driver"] = value
        elif key == "count":
            req["Count"] = _count(spec, value)
        elif key == "device":
            req["DeviceIDs"] = value.split(",")
        elif key == "capabilities":
            req["Capabilities"] = [[*value.split(","), "gpu"]]
        elif key == "options":
            req["Options"] = {k: v for k, _, v in (o.partition("=") for o in next(csv.reader([value]), []))}
        else:
            raise _flag_error("--gpus", spec, f"unexpected key '{key}' in '{item}'")
    if "count" not in seen and req["DeviceIDs"] is None:
        req["Count"] = 1
    req["Options"] = req["Options"] or {}
    req["Capabilities"] = req["Capabilities"] or [["gpu"]]
    return req


def storage_opts(specs: list[str] | None) -> dict[str, str] | None:
    out = {}
    for spec in specs or []:
        key, eq, value = spec.partition("=")
        if not eq:
            raise CLIError("invalid storage option", USAGE)
        out[key] = value
    return out or None


def namespace_modes(cgroupns: str | None, userns: str | None) -> dict[str, str]:
    if cgroupns not in (None, "", "host", "private"):
        raise CLIError("--cgroupns: invalid CGROUP mode", USAGE)
    if userns not in (None, "", "host"):
        raise CLIError("--userns: invalid USER mode", USAGE)
    return {"CgroupnsMode": cgroupns or "", "UsernsMode": userns or ""}


def swappiness(value: int) -> int:
    if value != -1 and not 0 <= value <= 100:
        raise CLIError(f"invalid value: {value}. Valid memory swappiness range is 0-100", USAGE)
    return value


def windows_only(o: dict[str, Any], e: Engine) -> None:
    """docker's refusal of the Windows-only flags for a daemon on another OS (exit 1, one line per flag)."""
    given = [flag for key, flag in WINDOWS_ONLY.items() if o[key]]
    os_type = e.os_type if given else ""
    if os_type and os_type != "windows":
        raise CLIError("\n".join(f'"{flag}" is only supported on a Docker daemon running on windows, but the '
                                 f"Docker daemon is running on {os_type}" for flag in given))
