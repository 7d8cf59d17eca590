"""dockerd's checks on the HostConfig values this engine takes, with its words where it has them.

fields.py refuses the fields this engine does not implement at all; here are the values of
honoured fields it takes only in part (a volume driver, namespace modes; runtimes: engine/runtimes.py), checked the
way dockerd checks them, so a value outside them is a 400 that names it and never a silent default.
"""
from __future__ import annotations

import ipaddress
import re
from engine.containers.request import HostConfigModel
from engine.errors import InvalidArgument
from engine.networks.etcfiles import split_extra_host

_CGROUP_RULE = re.compile(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})")


def check(hc: HostConfigModel) -> None:
    if hc.VolumeDriver and hc.VolumeDriver != "local":
        raise InvalidArgument(f"VolumeDriver {hc.VolumeDriver!r} (--volume-driver) is not supported by this engine: "
                              "only local")
    if hc.Isolation and hc.Isolation != "default":
        raise InvalidArgument(f'Invalid isolation: "{hc.Isolation}" - linux only supports \'default\'')
    if hc.UsernsMode and hc.UsernsMode != "host":
        raise InvalidArgument(f"UsernsMode {hc.UsernsMode!r} is not supported by this engine: user namespace "
                              "remapping is not enabled")
    if hc.CgroupnsMode and hc.CgroupnsMode not in ("private", "host"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {hc.CgroupnsMode}")
    if (hc.ShmSize or 0) < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if swappiness(hc) is not None and not 0 <= (hc.MemorySwappiness or 0) <= 100:
        raise InvalidArgument(f"Invalid value: {hc.MemorySwappiness}, valid memory swappiness range is 0-100")
    for rule in hc.DeviceCgroupRules or []:
        if not _CGROUP_RULE.fullmatch(rule):
            raise InvalidArgument(f"invalid device cgroup format '{rule}'")
    _check_modes(hc)
    _check_security_opts(hc.SecurityOpt or [])
    for server in hc.Dns or []:
        _check_ip(server, "Dns")
    # Each is one word of a resolv.conf line: a newline would write lines of its own.
    for field, values in (("DnsSearch", hc.DnsSearch), ("DnsOptions", hc.DnsOptions)):
        for value in values or []:
            if any(c.isspace() for c in value):
                raise InvalidArgument(f"invalid {field} entry {value!r}: it cannot contain white space")
    for entry in hc.ExtraHosts or []:
        _check_extra_host(entry)


def swappiness(hc: HostConfigModel) -> int | None:
    """MemorySwappiness as asked for; the CLI sends -1 for "the kernel's"."""
    return None if hc.MemorySwappiness in (None, -1) else hc.MemorySwappiness



def _check_modes(hc: HostConfigModel) -> None:
    """Namespace modes: the host's or a private one, or (PID only) another container's; joining another
    container's uts namespace is not implemented (IPC modes, all of them, are checked by namespaces.ipc_mode)."""
    if hc.PidMode and hc.PidMode != "host":
        parts = hc.PidMode.split(":")
        if parts[0] != "container" or len(parts) != 2 or not parts[1]:
            raise InvalidArgument(f"invalid PID mode: {hc.PidMode}")
    if hc.UTSMode and hc.UTSMode != "host":
        if hc.UTSMode == "none" or hc.UTSMode.startswith("container:"):
            raise InvalidArgument(f"UTSMode {hc.UTSMode!r} is not supported by this engine")
        raise InvalidArgument(f"invalid UTS mode: {hc.UTSMode}")


_GO_BOOLS = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
             "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}


def _check_security_opts(opts: list[str]) -> None:
    no_new_privileges(opts)


def no_new_privileges(opts: list[str]) -> bool:
    """The options dockerd knows, read as it reads them (the last no-new-privileges wins); those this engine has
    no means to apply (an AppArmor profile, SELinux labels, writable cgroups) are refused rather than dropped."""
    wanted = False
    for opt in opts:
        if opt == "no-new-privileges":
            wanted = True
            continue
        if opt == "disable":  # SELinux labels off: there are none to turn off here
            continue
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if not sep:
            raise InvalidArgument(f"invalid --security-opt 1: {opt!r}")
        if key in ("no-new-privileges", "writable-cgroups"):
            if value not in _GO_BOOLS:
                raise InvalidArgument(f"invalid --security-opt 2: {opt!r}")
            if key == "no-new-privileges":
                wanted = _GO_BOOLS[value]
            elif _GO_BOOLS[value]:
                raise InvalidArgument(f"SecurityOpt {opt!r} is not supported by this engine")
            continue
        if key == "seccomp" or (key, value) in (("apparmor", "unconfined"), ("label", "disable")):
            continue
        if key in ("apparmor", "label"):
            raise InvalidArgument(f"SecurityOpt {opt!r} is not supported by this engine")
        raise InvalidArgument(f"invalid --security-opt 2: {opt!r}")
    return wanted


def _check_ip(value: str, field: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise InvalidArgument(f"invalid IP address in {field}: {value!r}") from None


def _check_extra_host(entry: str) -> None:
    try:
        split_extra_host(entry)
    except ValueError:
        raise InvalidArgument(f"invalid ExtraHosts entry (--add-host) {entry!r}: use name:address") from None
