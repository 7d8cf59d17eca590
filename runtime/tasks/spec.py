"""OCI runtime spec (config.json) generation with Docker's defaults.

`generate()` turns a finished process and per-container options into a spec with
Docker's defaults that runc 1.1 accepts on this kind of host. It never reads the
image's config: as with containerd, merging that into the process is the client's
step. Host limits that would only surface as an opaque runc failure at start
(capabilities outside our bounding set, rlimits above our hard limit, a lower
oom_score_adj) are turned into InvalidArgument here instead.

This module assembles the spec and decides the namespaces (with the hostname and
sysctls that depend on them); each other part has its module: spec_options (the
inputs), spec_process, spec_security, spec_mounts, spec_devices, spec_resources.
"""
from __future__ import annotations

import os
from typing import Any

from runtime.errors import InvalidArgument
from runtime.tasks import cgroups
from runtime.tasks.spec_devices import block_io_limits, cgroup_rules, devices
from runtime.tasks.spec_mounts import mounts
from runtime.tasks.spec_options import SpecOptions
from runtime.tasks.spec_process import command, environment, oom_score_adj, rlimits
from runtime.tasks.spec_resources import linux_resources
from runtime.tasks.spec_security import (
    capabilities,
    host_capabilities,
    masked_paths,
    readonly_paths,
    seccomp_profile,
)
from runtime.tasks import start_user
from runtime.tasks.users import ExecUser

OCI_VERSION = "1.0.2-dev"  # what runc 1.1 implements
# Linux's HOST_NAME_MAX.
_MAX_HOSTNAME = 64

# Sysctls that belong to a namespace the container owns, and which namespace that is.
_IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
    "kernel.shmmni", "kernel.shm_rmid_forced",
})
_UTS_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})


def _sysctls(opts: SpecOptions) -> dict[str, str]:
    for key in opts.sysctls:
        name = key.replace("/", ".")
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if opts.ipc_mode == "host":
                raise InvalidArgument(f"sysctl {key} is not allowed with the host's IPC namespace")
        elif name.startswith("net."):
            if opts.netns == "host":
                raise InvalidArgument(f"sysctl {key} is not allowed with the host's network namespace")
        elif name in _UTS_SYSCTLS:
            if opts.uts_mode == "host":
                raise InvalidArgument(f"sysctl {key} is not allowed with the host's UTS namespace")
        else:
            raise InvalidArgument(f"sysctl {key} is not allowed: it is not namespaced")
    return dict(opts.sysctls)


def _namespace_path(what: str, value: str) -> str:
    if not value.startswith("/"):
        raise InvalidArgument(f"invalid {what} {value!r}: use 'host' or an absolute namespace path")
    return value


def _namespaces(opts: SpecOptions) -> list[dict[str, str]]:
    ns: list[dict[str, str]] = []
    if opts.pid_mode is None:
        ns.append({"type": "pid"})
    elif opts.pid_mode != "host":
        ns.append({"type": "pid", "path": _namespace_path("pid mode", opts.pid_mode)})
    if opts.netns is None:
        ns.append({"type": "network"})
    elif opts.netns != "host":
        if not opts.netns.startswith("/"):
            raise InvalidArgument(f"invalid netns {opts.netns!r}: use 'host' or an absolute namespace path")
        ns.append({"type": "network", "path": opts.netns})
    if opts.ipc_mode in (None, "none"):
        ns.append({"type": "ipc"})
    elif opts.ipc_mode != "host":
        if not opts.ipc_mode.startswith("/"):
            raise InvalidArgument(f"invalid ipc mode {opts.ipc_mode!r}: use 'host', 'none' or an absolute "
                                  "namespace path")
        ns.append({"type": "ipc", "path": opts.ipc_mode})
    if opts.uts_mode is None:
        ns.append({"type": "uts"})
    elif opts.uts_mode != "host":
        ns.append({"type": "uts", "path": _namespace_path("uts mode", opts.uts_mode)})
    ns.append({"type": "mount"})
    # Docker's "private" cgroupns default applies to v2 hosts only; on v1 it is "host".
    cgroupns = opts.cgroupns or ("private" if cgroups.detect_mode() is cgroups.CgroupMode.UNIFIED else "host")
    if cgroupns == "private":
        ns.append({"type": "cgroup"})
    return ns


def _create_only_limits(opts: SpecOptions, resources: dict[str, Any]) -> dict[str, Any]:
    """Swappiness, the OOM killer and per-device block I/O: set at create only, not among the updatable limits."""
    if opts.memory_swappiness is not None:
        resources.setdefault("memory", {})["swappiness"] = opts.memory_swappiness
    if opts.oom_kill_disable:
        resources.setdefault("memory", {})["disableOOMKiller"] = True
    if per_device := block_io_limits(opts):
        resources.setdefault("blockIO", {}).update(per_device)
    return resources


def _hostname(container_id: str, opts: SpecOptions) -> str:
    if opts.uts_mode == "host":
        if opts.hostname or opts.domainname:
            raise InvalidArgument("conflicting options: hostname and the host's UTS namespace")
        return os.uname().nodename
    if opts.hostname:
        hostname = opts.hostname
    elif opts.netns == "host":
        hostname = os.uname().nodename  # Docker's choice for --network host
    else:
        hostname = container_id[:12]
    if len(hostname) > _MAX_HOSTNAME or "\0" in hostname or "/" in hostname:
        raise InvalidArgument(f"invalid hostname {hostname!r}: at most {_MAX_HOSTNAME} characters, no '/'")
    return hostname


# The rootfs is the bundle's own directory: runc resolves a relative root.path against the bundle.
ROOTFS = "rootfs"


def generate(user: ExecUser, container_id: str, namespace: str, opts: SpecOptions) -> dict[str, Any]:
    """The OCI spec for container `container_id` whose `opts.user` resolved to `user` on its rootfs."""
    cgroups.validate_container_id(container_id)

    args = command(opts)
    cwd = opts.cwd or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    hostname = _hostname(container_id, opts)
    caps = capabilities(opts, host_capabilities())

    process: dict[str, Any] = {
        "terminal": opts.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": environment(opts, hostname, user.home),
        "cwd": cwd,
        "capabilities": {
            "bounding": list(caps), "effective": list(caps), "permitted": list(caps), "inheritable": [], "ambient": [],
        },
        "rlimits": rlimits(opts.ulimits),
        "noNewPrivileges": opts.no_new_privileges,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = user.additional_gids
    if (adj := oom_score_adj(opts.oom_score_adj)) is not None:
        process["oomScoreAdj"] = adj

    device_nodes, device_rules = devices(opts)

    linux: dict[str, Any] = {
        "namespaces": _namespaces(opts),
        "resources": _create_only_limits(opts, {"devices": cgroup_rules(opts, device_rules), **linux_resources(opts)}),
        "cgroupsPath": cgroups.cgroups_path(namespace, container_id, opts.cgroup_parent),
        "maskedPaths": masked_paths(opts),
        "readonlyPaths": readonly_paths(opts),
    }
    if device_nodes:
        linux["devices"] = device_nodes
    if sysctl := _sysctls(opts):
        linux["sysctl"] = sysctl
    if (profile := seccomp_profile(opts, caps)) is not None:
        linux["seccomp"] = profile
    if opts.rootfs_propagation:
        linux["rootfsPropagation"] = opts.rootfs_propagation

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": ROOTFS, "readonly": opts.readonly_rootfs},
        "mounts": mounts(opts),
        "linux": linux,
    }
    # A joined namespace keeps the hostname its owner set (runc would otherwise set it again in there).
    if opts.uts_mode is None:
        spec["hostname"] = hostname
        if opts.domainname:
            # As dockerd sets it: runc reads the spec's `domainname` field only from 1.2 on.
            linux.setdefault("sysctl", {}).setdefault("kernel.domainname", opts.domainname)
    spec["annotations"] = {**opts.annotations, start_user.ANNOTATION: start_user.request(opts)}
    return spec
