"""From the kubelet's configs to the runtime's spec options: Kubernetes' rules for pods and containers.

The kubelet has already merged the pod's and container's settings; what is left here is what
containerd's CRI plugin decides: which namespaces a container joins (the pod's network, IPC and UTS;
the pod's PID namespace only when asked), how the image's Entrypoint/Cmd meet command/args, the
pod's /etc files and /dev/shm, and clamping what this host cannot grant (a lower oom_score_adj).
"""
from __future__ import annotations

import os
from typing import Any

from cri_api.v1 import api_pb2 as cri

from runtime.cri.pod_namespaces import PodNamespaces
from runtime.tasks import cgroups
from runtime.errors import InvalidArgument
from runtime.tasks.spec_options import SpecMount, SpecOptions

_PROPAGATION = {
    cri.PROPAGATION_PRIVATE: "rprivate",
    cri.PROPAGATION_HOST_TO_CONTAINER: "rslave",
    cri.PROPAGATION_BIDIRECTIONAL: "rshared",
}


def own_oom_score_adj() -> int:
    try:
        with open("/proc/self/oom_score_adj") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 0


def clamp_oom_score_adj(wanted: int) -> int:
    """The kernel refuses to lower a score below the caller's own without CAP_SYS_RESOURCE (checked here:
    even as root): keep at or above the daemon's, as containerd's restrict_oom_score_adj does."""
    return max(wanted, own_oom_score_adj())


def pod_hostname(config: cri.PodSandboxConfig) -> str:
    """The pod's hostname: the kubelet's, else the node's (containerd's), in its files, its UTS and $HOSTNAME."""
    return config.hostname or os.uname().nodename


def resource_options(r: cri.LinuxContainerResources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.cpu_period:
        out["cpu_period"] = r.cpu_period
    if r.cpu_quota:
        out["cpu_quota"] = r.cpu_quota
    if r.cpu_shares:
        out["cpu_shares"] = r.cpu_shares
    if r.memory_limit_in_bytes:
        out["memory"] = r.memory_limit_in_bytes
    if r.memory_swap_limit_in_bytes:
        out["memory_swap"] = r.memory_swap_limit_in_bytes
    elif r.memory_limit_in_bytes and cgroups.swap_limit_supported():
        # containerd's rule: no swap unless asked for (the runtime's own default is Docker's, twice the limit).
        out["memory_swap"] = r.memory_limit_in_bytes
    if r.cpuset_cpus:
        out["cpuset_cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        out["cpuset_mems"] = r.cpuset_mems
    if r.hugepage_limits:
        raise InvalidArgument("hugepage limits are not supported by this runtime (no hugetlb support)")
    if r.unified:
        raise InvalidArgument(f"unified cgroup v2 settings are not supported: {', '.join(sorted(r.unified))}")
    return out


def _seccomp(profile: cri.SecurityProfile | None, legacy_path: str) -> str:
    """The seccomp mode asked for; nothing asked for is unconfined (api.proto: "" is unconfined).

    A present `seccomp` field rules even when it is all defaults (RuntimeDefault has the value 0),
    so presence, not content, decides whether the deprecated path is read.
    """
    if profile is not None:
        if profile.profile_type == cri.SecurityProfile.Unconfined:
            return "unconfined"
        if profile.profile_type == cri.SecurityProfile.Localhost:
            if not profile.localhost_ref.startswith("/"):
                raise InvalidArgument(f"seccomp localhost profile {profile.localhost_ref!r} is not an absolute path")
            return profile.localhost_ref
        return "default"
    if legacy_path in ("", "unconfined"):
        return "unconfined"
    if legacy_path in ("runtime/default", "docker/default"):
        return "default"
    if legacy_path.startswith("localhost/"):
        return legacy_path[len("localhost"):]
    raise InvalidArgument(f"unknown seccomp profile {legacy_path!r}")


def refuse_unsupported(sc: cri.LinuxSandboxSecurityContext | cri.LinuxContainerSecurityContext) -> None:
    """Security options this runtime cannot honour are refused by name rather than dropped."""
    if sc.HasField("selinux_options") and sc.selinux_options.ByteSize():
        raise InvalidArgument("selinux_options are not supported: SELinux is not enabled on this runtime")
    ns = sc.namespace_options
    if ns.HasField("userns_options") and ns.userns_options.mode == cri.POD:
        raise InvalidArgument("user namespaces (userns_options mode POD) are not supported by this runtime")
    if sc.HasField("apparmor") and sc.apparmor.profile_type == cri.SecurityProfile.Localhost:
        raise InvalidArgument("AppArmor localhost profiles are not supported: AppArmor is not enabled here")
    if sc.supplemental_groups_policy == cri.Strict:
        raise InvalidArgument("supplemental_groups_policy Strict is not supported by this runtime")


def _user(run_as_user: cri.Int64Value | None, run_as_group: cri.Int64Value | None, username: str,
          image_user: str) -> str | None:
    group = str(run_as_group.value) if run_as_group is not None and run_as_group.ByteSize() else None
    if run_as_user is not None and run_as_user.ByteSize():
        user = str(run_as_user.value)
    elif username:
        user = username
    elif image_user:
        user, _, image_group = image_user.partition(":")
        group = group or image_group or None
    else:
        if group is not None:
            return f"0:{group}"
        return None
    return f"{user}:{group}" if group is not None else user


def sandbox_options(config: cri.PodSandboxConfig, image_config: dict[str, Any], *, netns: str | None,
                    host_pid: bool, host_ipc: bool, etc_dir: str, shm_dir: str | None,
                    cgroup_parent: str | None) -> SpecOptions:
    """The pause container's options: it owns the pod's IPC and UTS namespaces and sits in its netns."""
    linux = config.linux
    sc = linux.security_context
    refuse_unsupported(sc)
    img = image_config.get("config") or {}
    args = list(img.get("Entrypoint") or []) + list(img.get("Cmd") or [])
    if not args:
        raise InvalidArgument("the sandbox image has no Entrypoint or Cmd")
    host_network = netns == "host"
    mounts = [SpecMount(type="bind", source=os.path.join(etc_dir, name), destination=f"/etc/{name}",
                        options=["rbind", "ro"]) for name in ("hostname", "hosts", "resolv.conf")]
    if shm_dir is not None:
        mounts.append(SpecMount(type="bind", source=shm_dir, destination="/dev/shm", options=["rbind"]))
    opts = SpecOptions(
        args=args,
        env=list(img.get("Env") or []),
        cwd=img.get("WorkingDir") or None,
        user=_user(sc.run_as_user if sc.HasField("run_as_user") else None,
                   sc.run_as_group if sc.HasField("run_as_group") else None, "", str(img.get("User") or "")),
        additional_gids=list(sc.supplemental_groups),
        hostname=None if host_network else pod_hostname(config),
        readonly_rootfs=sc.readonly_rootfs,
        privileged=sc.privileged,
        no_new_privileges=True,
        oom_score_adj=clamp_oom_score_adj(-998),
        mounts=mounts,
        sysctls=dict(linux.sysctls),
        annotations=dict(config.annotations),
        cgroup_parent=cgroup_parent,
        netns=netns,
        pid_mode="host" if host_pid else None,
        ipc_mode="host" if host_ipc else None,
        uts_mode="host" if host_network else None,
        seccomp=_seccomp(sc.seccomp if sc.HasField("seccomp") else None, sc.seccomp_profile_path),
        cpu_shares=2,  # the pause process: the smallest share, as containerd gives it
    )
    return opts


def command(config: cri.ContainerConfig, image_config: dict[str, Any]) -> list[str]:
    """Kubernetes' rule: `command` replaces the Entrypoint (and then the image's Cmd is dropped);
    `args` replace the Cmd."""
    img = image_config.get("config") or {}
    cmd = list(config.command)
    args = list(config.args)
    if not cmd:
        cmd = list(img.get("Entrypoint") or [])
        if not args:
            args = list(img.get("Cmd") or [])
    full = cmd + args
    if not full:
        raise InvalidArgument("no command specified: the container has no command or args and its image none")
    return full


def container_options(config: cri.ContainerConfig, image_config: dict[str, Any], *, pod_ns: PodNamespaces,
                      sandbox: cri.PodSandboxConfig, etc_dir: str, shm_dir: str | None,
                      target_pid: int | None, cgroup_parent: str | None) -> SpecOptions:
    img = image_config.get("config") or {}
    linux = config.linux
    sc = linux.security_context
    refuse_unsupported(sc)
    if sc.capabilities.add_ambient_capabilities:
        raise InvalidArgument("ambient capabilities are not supported by this runtime")
    ns = sc.namespace_options
    env = list(img.get("Env") or [])
    env += [f"{kv.key}={kv.value}" for kv in config.envs]
    mounts: list[SpecMount] = []
    taken = set()
    for m in config.mounts:
        if not m.container_path.startswith("/"):
            raise InvalidArgument(f"mount container path {m.container_path!r} is not absolute")
        if m.image.image:
            raise InvalidArgument("image volume mounts are not supported by this runtime")
        if m.uidMappings or m.gidMappings:
            raise InvalidArgument("idmapped mounts (uidMappings/gidMappings) are not supported by this runtime")
        if m.recursive_read_only:
            raise InvalidArgument("recursive_read_only mounts are not supported by runc 1.1")
        if not os.path.exists(m.host_path):
            raise InvalidArgument(f"mount host path {m.host_path!r} does not exist")
        options = ["rbind", _PROPAGATION.get(m.propagation, "rprivate")]
        if m.readonly:
            options.append("ro")
        mounts.append(SpecMount(type="bind", source=m.host_path, destination=m.container_path, options=options))
        taken.add(os.path.normpath(m.container_path))
    for name in ("hostname", "hosts", "resolv.conf"):
        if f"/etc/{name}" not in taken:
            mounts.append(SpecMount(type="bind", source=os.path.join(etc_dir, name), destination=f"/etc/{name}",
                                    options=["rbind", "ro" if sc.readonly_rootfs else "rw"]))
    if shm_dir is not None and "/dev/shm" not in taken:
        mounts.append(SpecMount(type="bind", source=shm_dir, destination="/dev/shm", options=["rbind"]))
    if config.CDI_devices:
        raise InvalidArgument("CDI devices are not supported by this runtime")
    devices = []
    for d in config.devices:
        devices.append(f"{d.host_path}:{d.container_path or d.host_path}:{d.permissions or 'rwm'}")
    if ns.pid == cri.NODE:
        pid_mode: str | None = "host"
    elif ns.pid == cri.POD:
        if pod_ns.pid is None:
            raise InvalidArgument("the pod shares no PID namespace (its namespace_options.pid is not POD): "
                                  "a container cannot join one")
        pid_mode = pod_ns.pid
    elif ns.pid == cri.TARGET:
        if not target_pid:
            raise InvalidArgument(f"target container {ns.target_id!r} of the PID namespace is not running")
        pid_mode = f"/proc/{target_pid}/ns/pid"
    else:
        pid_mode = None
    caps = sc.capabilities
    resources = resource_options(linux.resources) if linux.HasField("resources") else {}
    if linux.HasField("resources") and linux.resources.oom_score_adj:
        resources["oom_score_adj"] = clamp_oom_score_adj(linux.resources.oom_score_adj)
    return SpecOptions(
        args=command(config, image_config),
        env=env,
        cwd=config.working_dir or img.get("WorkingDir") or None,
        user=_user(sc.run_as_user if sc.HasField("run_as_user") else None,
                   sc.run_as_group if sc.HasField("run_as_group") else None, sc.run_as_username,
                   str(img.get("User") or "")),
        additional_gids=list(sc.supplemental_groups),
        hostname=None if pod_ns.uts == "host" else pod_hostname(sandbox),
        tty=config.tty,
        stdin=config.stdin,
        readonly_rootfs=sc.readonly_rootfs,
        privileged=sc.privileged,
        cap_add=[c for c in caps.add_capabilities],
        cap_drop=[c for c in caps.drop_capabilities],
        no_new_privileges=sc.no_new_privs,
        mounts=mounts,
        devices=devices,
        annotations=dict(config.annotations),
        cgroup_parent=cgroup_parent,
        netns=pod_ns.net,
        pid_mode=pid_mode,
        ipc_mode="host" if ns.ipc == cri.NODE else pod_ns.ipc,
        uts_mode=pod_ns.uts,
        seccomp=_seccomp(sc.seccomp if sc.HasField("seccomp") else None, sc.seccomp_profile_path),
        masked_paths=list(sc.masked_paths) if sc.masked_paths else None,
        readonly_paths=list(sc.readonly_paths) if sc.readonly_paths else None,
        **resources,
    )
