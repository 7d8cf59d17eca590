"""Device nodes and device cgroup rules of a container's spec.

Docker's allow-list for unprivileged containers, `--device` mappings checked
against the host's nodes, and a privileged container's copy of the host's /dev:
all of it decides which devices a process may open, so it lives together.
"""
from __future__ import annotations

import os
import posixpath
import re
import stat
from typing import Any

from runtime.errors import InvalidArgument
from runtime.tasks.spec_options import SpecOptions

# Docker's allowed device cgroup rules for an unprivileged container: mknod of anything
# (creating a node grants no access), plus the nodes every program expects in /dev.
_DEFAULT_DEVICE_RULES: tuple[tuple[str, int | None, int | None, str], ...] = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),  # null
    ("c", 1, 5, "rwm"),  # zero
    ("c", 1, 7, "rwm"),  # full
    ("c", 1, 8, "rwm"),  # random
    ("c", 1, 9, "rwm"),  # urandom
    ("c", 5, 0, "rwm"),  # tty
    ("c", 5, 1, "rwm"),  # console
    ("c", 5, 2, "rwm"),  # ptmx
    ("c", 136, None, "rwm"),  # pts/*
    ("c", 10, 200, "rwm"),  # net/tun
)
# Directories of /dev that hold no device nodes a privileged container should copy.
_SKIP_HOST_DEV = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
# runc sets these up itself; passing the host's would clash.
_SKIP_HOST_DEV_NODES = frozenset({"/dev/console", "/dev/ptmx"})

_ACCESS_RE = re.compile(r"^[rwm]{1,3}$")


def _device_rule(typ: str, major: int | None, minor: int | None, access: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": typ, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


def _device_node(container_path: str, st: os.stat_result) -> dict[str, Any]:
    return {
        "path": container_path,
        "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def _parse_device(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) == 1:
        return parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if _ACCESS_RE.match(parts[1]):
            return parts[0], parts[0], parts[1]
        return parts[0], parts[1], "rwm"
    if len(parts) == 3 and _ACCESS_RE.match(parts[2]):
        return parts[0], parts[1], parts[2]
    raise InvalidArgument(f"invalid device specification: {spec}")


def _user_devices(specs: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes, rules = [], []
    for spec in specs:
        host, container, access = _parse_device(spec)
        if not host.startswith("/") or not container.startswith("/"):
            raise InvalidArgument(f"invalid device specification {spec!r}: paths must be absolute")
        try:
            st = os.stat(host)
        except OSError as e:
            # Go's wording (lower case), which the docker CLI reads to answer 127 for a missing file.
            raise InvalidArgument(f'error gathering device information while adding custom device "{host}": '
                                  f'{(e.strerror or "").lower()}') from e
        except ValueError as e:  # a NUL byte in the path
            raise InvalidArgument(f"error gathering device information for {host!r}: {e}") from e
        found = _under(host, container) if stat.S_ISDIR(st.st_mode) else [(container, st)]
        if not found or not all(stat.S_ISCHR(f.st_mode) or stat.S_ISBLK(f.st_mode) for _, f in found):
            raise InvalidArgument(f"{host} is not a device node")
        for path, device in found:
            node = _device_node(posixpath.normpath(path), device)
            nodes.append(node)
            rules.append(_device_rule(node["type"], node["major"], node["minor"], access))
    return nodes, rules


def _under(host: str, container: str) -> list[tuple[str, os.stat_result]]:
    """A directory given as a device: every device node below it, at the same place below `container` (as
    dockerd takes `--device /dev/snd`); links and other files are passed over."""
    found = []
    for dirpath, dirnames, filenames in os.walk(host):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # a hot-unplugged device
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append((posixpath.join(container, os.path.relpath(path, host)), st))
    return found


def _host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every device node of the host's /dev, as a privileged container gets them."""
    nodes = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_HOST_DEV]
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if path in _SKIP_HOST_DEV_NODES:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # a hot-unplugged device
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                nodes.append(_device_node(path, st))
    return nodes


def devices(opts: SpecOptions) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The device nodes to create in the container, and the cgroup rules its `--device`s add."""
    device_nodes, device_rules = _user_devices(opts.devices)
    if opts.privileged:
        # Every host device, except where an explicit --device maps onto the same path.
        taken = {n["path"] for n in device_nodes}
        device_nodes = [n for n in _host_devices() if n["path"] not in taken] + device_nodes
    return device_nodes, device_rules


def cgroup_rules(opts: SpecOptions, device_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OCI `linux.resources.devices`: deny all, then Docker's allow-list and the `--device` rules."""
    if opts.privileged:
        return [{"allow": True, "access": "rwm"}]
    rules = [{"allow": False, "access": "rwm"}]
    rules += [_device_rule(*rule) for rule in _DEFAULT_DEVICE_RULES]
    rules += device_rules
    rules += [_cgroup_rule(r) for r in opts.device_cgroup_rules]
    return rules


_CGROUP_RULE = re.compile(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})")


def _cgroup_rule(text: str) -> dict[str, Any]:
    """Docker's --device-cgroup-rule: `type major:minor access`, `*` for any number."""
    m = _CGROUP_RULE.fullmatch(text)
    if m is None:
        raise InvalidArgument(f"invalid device cgroup rule {text!r}: use 'c|b|a major:minor rwm'")
    typ, major, minor, access = m.groups()
    return _device_rule(typ, None if major == "*" else int(major), None if minor == "*" else int(minor), access)


# BlockIOLimits field -> (OCI blockIO key, the key of the per-device value)
_BLOCK_IO = {"weight": ("weightDevice", "weight"), "read_bps": ("throttleReadBpsDevice", "rate"),
             "write_bps": ("throttleWriteBpsDevice", "rate"), "read_iops": ("throttleReadIOPSDevice", "rate"),
             "write_iops": ("throttleWriteIOPSDevice", "rate")}


def block_io_limits(opts: SpecOptions) -> dict[str, Any]:
    """OCI `linux.resources.blockIO` per-device entries: each device named by the host's node."""
    out: dict[str, Any] = {}
    for name, (key, value_key) in _BLOCK_IO.items():
        for limit in getattr(opts.block_io, name):
            try:
                st = os.stat(limit.path)
            except OSError as e:
                raise InvalidArgument(f"stat {limit.path}: {(e.strerror or '').lower()}") from None
            if not stat.S_ISBLK(st.st_mode):
                raise InvalidArgument(f"block I/O limit on {limit.path}: not a block device")
            if name == "weight" and not 10 <= limit.rate <= 1000:
                raise InvalidArgument(f"block I/O weight of {limit.path} must be between 10 and 1000")
            out.setdefault(key, []).append({"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                                            value_key: limit.rate})
    return out
