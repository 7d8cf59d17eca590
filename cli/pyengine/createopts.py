"""The options `run` and `create` share, declared once, and the create request they make.

docker's `run` is `create` plus attach and start: both take the same container options, so their
Typer signatures are built from one declaration (`container_options`) and their request body by
one function (`create_body`).
"""
# No `from __future__ import annotations`: Typer would evaluate the string annotations at every start-up.

import contextlib
import inspect
import os
import sys
from typing import Annotated, Any, Callable

import typer

from cli.pyengine import completion as complete
from cli.pyengine import apisocket, hostopts, netopts, resourceopts, runopts
from cli.pyengine.api import CLIError, DaemonError, Engine
from cli.pyengine.app import key_values, no_content_trust
from cli.pyengine.images import pull_image, with_tag
from cli.pyengine.streams import terminal_size


def container_options(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="The image to run.", autocompletion=complete.images)],
    command: Annotated[list[str] | None, typer.Argument(metavar="COMMAND", help="Command and arguments.")] = None,
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep STDIN open.")] = False,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Allocate a pseudo-TTY.")] = False,
    rm: Annotated[bool, typer.Option("--rm", help="Remove the container when it exits.")] = False,
    env: Annotated[list[str] | None, typer.Option("-e", "--env", help="Set an environment variable.")] = None,
    volume: Annotated[list[str] | None, typer.Option(
        "-v", "--volume", help="Bind mount HOST:CONTAINER[:ro], a volume NAME:CONTAINER[:ro], or an anonymous "
                               "volume CONTAINER.")] = None,
    mount: Annotated[list[str] | None, typer.Option(
        "--mount", help="Mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,...].")] = None,
    tmpfs: Annotated[list[str] | None, typer.Option("--tmpfs", help="Mount a tmpfs PATH[:OPTIONS].")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name the container.")] = None,
    network: Annotated[list[str] | None, typer.Option(
        "--network", help="none, host, bridge, a network's name, or name=NET,alias=A,ip=IP,ip6=IP,mac-address=MAC,"
                          "link-local-ip=IP,driver-opt=K=V,gw-priority=N; repeat to join several.")] = None,
    network_alias: Annotated[list[str] | None, typer.Option("--network-alias",
                                                            help="A network-scoped alias.")] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="IPv4 address on the network.")] = None,
    ip6: Annotated[str | None, typer.Option("--ip6", help="IPv6 address on the network.")] = None,
    link_local_ip: Annotated[list[str] | None, typer.Option("--link-local-ip",
                                                            help="A link-local address on the network.")] = None,
    mac_address: Annotated[str | None, typer.Option("--mac-address", help="MAC address on the network.")] = None,
    link: Annotated[list[str] | None, typer.Option("--link", help="Link to a container NAME[:ALIAS].")] = None,
    publish: Annotated[list[str] | None, typer.Option(
        "-p", "--publish", help="Publish \\[IP:]\\[HOST_PORT:]CONTAINER_PORT\\[/PROTO], ports or ranges.")] = None,
    publish_all: Annotated[bool, typer.Option("-P", "--publish-all",
                                              help="Publish every exposed port on a random port.")] = False,
    expose: Annotated[list[str] | None, typer.Option("--expose", help="Expose a port or a range.")] = None,
    entrypoint: Annotated[str | None, typer.Option("--entrypoint", help="Override the image's entrypoint.")] = None,
    workdir: Annotated[str | None, typer.Option("-w", "--workdir", help="Working directory inside.")] = None,
    user: Annotated[str | None, typer.Option("-u", "--user", help="USER[:GROUP] to run as.")] = None,
    label: Annotated[list[str] | None, typer.Option("-l", "--label", help="Set a label KEY=VALUE.")] = None,
    # Unset leaves it to the daemon's default; --init=false says no even to a daemon that inits by default.
    init: Annotated[bool | None, typer.Option("--init", help="Run an init that forwards signals and reaps.")]
    = None,
    memory: Annotated[int | None, typer.Option("-m", "--memory", parser=runopts.ram_in_bytes, metavar="BYTES",
                                               help="Memory limit (512m, 1g).")] = None,
    cpus: Annotated[float | None, typer.Option("--cpus", help="Number of CPUs.")] = None,
    restart: Annotated[str | None, typer.Option(
        "--restart", help="Restart policy: no, always, unless-stopped, on-failure[:N].")] = None,
    health_cmd: Annotated[str | None, typer.Option("--health-cmd", help="Command to check health.")] = None,
    health_interval: Annotated[str | None, typer.Option("--health-interval", help="Time between checks.")] = None,
    health_timeout: Annotated[str | None, typer.Option("--health-timeout", help="A check's time limit.")] = None,
    health_retries: Annotated[int | None, typer.Option(
        "--health-retries", help="Consecutive failures that make it unhealthy.")] = None,
    health_start_period: Annotated[str | None, typer.Option(
        "--health-start-period", help="Start-up time when failures do not count.")] = None,
    health_start_interval: Annotated[str | None, typer.Option(
        "--health-start-interval", help="Time between checks during the start period.")] = None,
    no_healthcheck: Annotated[bool, typer.Option("--no-healthcheck", help="Disable the image's healthcheck.")] = False,
    health_on_failure: Annotated[str | None, typer.Option(
        "--health-on-failure", help="none, kill, stop or restart when the container turns unhealthy.")] = None,
    hostname: Annotated[str | None, typer.Option("-h", "--hostname", help="Container host name.")] = None,
    domainname: Annotated[str | None, typer.Option("--domainname", help="Container NIS domain name.")] = None,
    cap_add: Annotated[list[str] | None, typer.Option("--cap-add", help="Add a Linux capability.")] = None,
    cap_drop: Annotated[list[str] | None, typer.Option("--cap-drop", help="Drop a Linux capability.")] = None,
    privileged: Annotated[bool, typer.Option("--privileged", help="Give extended privileges.")] = False,
    read_only: Annotated[bool, typer.Option("--read-only", help="Mount the root filesystem read-only.")] = False,
    security_opt: Annotated[list[str] | None, typer.Option("--security-opt", help="A security option.")] = None,
    add_host: Annotated[list[str] | None, typer.Option("--add-host", help="Add a host-to-IP mapping host:ip.")] = None,
    dns: Annotated[list[str] | None, typer.Option("--dns", help="A DNS server.")] = None,
    dns_search: Annotated[list[str] | None, typer.Option("--dns-search", help="A DNS search domain.")] = None,
    dns_option: Annotated[list[str] | None, typer.Option("--dns-option", help="A DNS option.")] = None,
    ulimit: Annotated[list[str] | None, typer.Option("--ulimit", help="A ulimit NAME=SOFT[:HARD].")] = None,
    shm_size: Annotated[str | None, typer.Option("--shm-size", metavar="BYTES", help="Size of /dev/shm.")] = None,
    stop_signal: Annotated[str | None, typer.Option("--stop-signal", help="Signal to stop the container.")] = None,
    stop_timeout: Annotated[int | None, typer.Option(
        "--stop-timeout", help="Seconds to wait for the stop signal before killing.")] = None,
    pids_limit: Annotated[int | None, typer.Option("--pids-limit", help="Process limit (-1: unlimited).")] = None,
    memory_swap: Annotated[str | None, typer.Option(
        "--memory-swap", metavar="BYTES", help="Memory plus swap limit (-1: unlimited swap).")] = None,
    memory_reservation: Annotated[str | None, typer.Option(
        "--memory-reservation", metavar="BYTES", help="Memory soft limit.")] = None,
    cpu_shares: Annotated[int | None, typer.Option("-c", "--cpu-shares", help="CPU shares (relative weight).")] = None,
    cpu_period: Annotated[int | None, typer.Option("--cpu-period", help="CPU CFS period.")] = None,
    cpu_quota: Annotated[int | None, typer.Option("--cpu-quota", help="CPU CFS quota.")] = None,
    cpuset_cpus: Annotated[str | None, typer.Option("--cpuset-cpus", help="CPUs allowed (0-3, 0,1).")] = None,
    cpuset_mems: Annotated[str | None, typer.Option("--cpuset-mems", help="Memory nodes allowed (0-3, 0,1).")] = None,
    device: Annotated[list[str] | None, typer.Option(
        "--device", help="Add a host device HOST[:CONTAINER][:PERMISSIONS].")] = None,
    sysctl: Annotated[list[str] | None, typer.Option("--sysctl", help="A namespaced sysctl KEY=VALUE.")] = None,
    ipc: Annotated[str | None, typer.Option("--ipc", help="IPC mode.")] = None,
    pid: Annotated[str | None, typer.Option("--pid", help="PID namespace.")] = None,
    uts: Annotated[str | None, typer.Option("--uts", help="UTS namespace.")] = None,
    group_add: Annotated[list[str] | None, typer.Option("--group-add", help="An additional group.")] = None,
    oom_kill_disable: Annotated[bool, typer.Option("--oom-kill-disable", help="Disable the OOM killer.")] = False,
    oom_score_adj: Annotated[int | None, typer.Option("--oom-score-adj", help="Tune the OOM score.")] = None,
    log_driver: Annotated[str | None, typer.Option("--log-driver", help="Logging driver.")] = None,
    log_opt: Annotated[list[str] | None, typer.Option("--log-opt", help="A log driver option.")] = None,
    env_file: Annotated[list[str] | None, typer.Option("--env-file", help="Read environment variables "
                                                                          "from a file.")] = None,
    label_file: Annotated[list[str] | None, typer.Option("--label-file", help="Read labels from a file.")] = None,
    cidfile: Annotated[str | None, typer.Option("--cidfile", help="Write the container ID to the file.")] = None,
    platform: Annotated[str | None, typer.Option("--platform", help="The image's platform (os/arch).")] = None,
    pull: Annotated[str, typer.Option("--pull", help="Pull the image: missing, always or never.")] = "missing",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Suppress the pull output.")] = False,
    attach: Annotated[list[str] | None, typer.Option(
        "-a", "--attach", help="Attach to STDIN, STDOUT or STDERR.")] = None,
    annotation: Annotated[list[str] | None, typer.Option(
        "--annotation", help="An annotation KEY=VALUE passed to the OCI runtime.")] = None,
    blkio_weight: Annotated[str | None, typer.Option(
        "--blkio-weight", metavar="UINT16", help="Block I/O weight (10 to 1000, 0: none).")] = None,
    blkio_weight_device: Annotated[list[str] | None, typer.Option(
        "--blkio-weight-device", help="A device's block I/O weight /dev/X:WEIGHT.")] = None,
    device_read_bps: Annotated[list[str] | None, typer.Option(
        "--device-read-bps", help="Read rate limit /dev/X:RATE[kb|mb|gb].")] = None,
    device_write_bps: Annotated[list[str] | None, typer.Option(
        "--device-write-bps", help="Write rate limit /dev/X:RATE[kb|mb|gb].")] = None,
    device_read_iops: Annotated[list[str] | None, typer.Option(
        "--device-read-iops", help="Read rate limit /dev/X:IO_PER_SECOND.")] = None,
    device_write_iops: Annotated[list[str] | None, typer.Option(
        "--device-write-iops", help="Write rate limit /dev/X:IO_PER_SECOND.")] = None,
    device_cgroup_rule: Annotated[list[str] | None, typer.Option(
        "--device-cgroup-rule", help="A device cgroup rule 'TYPE MAJOR:MINOR ACCESS'.")] = None,
    gpus: Annotated[list[str] | None, typer.Option(
        "--gpus", help="GPUs: all, a count, or count=N,device=ID,driver=D,capabilities=C,options=K=V.")] = None,
    cgroupns: Annotated[str | None, typer.Option("--cgroupns", help="Cgroup namespace: host or private.")] = None,
    cgroup_parent: Annotated[str | None, typer.Option("--cgroup-parent", help="Parent cgroup.")] = None,
    userns: Annotated[str | None, typer.Option("--userns", help="User namespace: host.")] = None,
    runtime: Annotated[str | None, typer.Option("--runtime", help="OCI runtime to use.")] = None,
    isolation: Annotated[str | None, typer.Option("--isolation", help="Isolation technology.")] = None,
    memory_swappiness: Annotated[int, typer.Option(
        "--memory-swappiness", help="Memory swappiness (0 to 100, -1: the host's).")] = -1,
    kernel_memory: Annotated[str | None, typer.Option(
        "--kernel-memory", metavar="BYTES", help="Deprecated and ignored, as by docker 28.")] = None,
    cpu_rt_period: Annotated[int | None, typer.Option(
        "--cpu-rt-period", help="CPU real-time period (microseconds).")] = None,
    cpu_rt_runtime: Annotated[int | None, typer.Option(
        "--cpu-rt-runtime", help="CPU real-time runtime (microseconds).")] = None,
    cpu_count: Annotated[int | None, typer.Option("--cpu-count", help="CPU count (Windows only).")] = None,
    cpu_percent: Annotated[int | None, typer.Option("--cpu-percent", help="CPU percent (Windows only).")] = None,
    io_maxbandwidth: Annotated[str | None, typer.Option(
        "--io-maxbandwidth", metavar="BYTES", help="System drive bandwidth limit (Windows only).")] = None,
    io_maxiops: Annotated[int | None, typer.Option(
        "--io-maxiops", help="System drive IOps limit (Windows only).")] = None,
    storage_opt: Annotated[list[str] | None, typer.Option(
        "--storage-opt", help="A storage driver option KEY=VALUE.")] = None,
    volume_driver: Annotated[str | None, typer.Option("--volume-driver", help="Volume driver.")] = None,
    volumes_from: Annotated[list[str] | None, typer.Option(
        "--volumes-from", help="Mount the volumes of a container NAME[:ro|rw].")] = None,
    use_api_socket: Annotated[bool, typer.Option(
        "--use-api-socket", help="Bind mount the daemon's API socket (and the registry logins).")] = False,
    disable_content_trust: Annotated[bool, typer.Option(
        "--disable-content-trust", help="Skip image verification (always: this CLI does no content trust).")]
    = True,
) -> None:
    """The declaration of the shared options: only its signature is used (see `with_container_options`)."""


def with_container_options(*extra: inspect.Parameter) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command taking `**opts` the shared options (and `extra` ones after the arguments) as its
    signature, which is what Typer reads its parameters from."""
    shared = list(inspect.signature(container_options).parameters.values())
    arguments, options = shared[:2], shared[2:]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command.__signature__ = inspect.Signature([*arguments, *extra, *options])  # type: ignore[attr-defined]
        return command

    return decorate


def env_list(items: list[str] | None) -> list[str] | None:
    """-e KEY=VALUE as given; -e KEY takes KEY from our environment, or is dropped when we have none."""
    out = []
    for item in items or []:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return out or None


def _healthcheck(cmd: str | None, interval: str | None, timeout: str | None, retries: int | None,
                 start_period: str | None, start_interval: str | None, disabled: bool) -> dict[str, Any] | None:
    """Config.Healthcheck as the docker CLI builds it from the --health-* flags."""
    if disabled:
        if cmd:
            raise CLIError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    given = any(v is not None for v in (cmd, interval, timeout, retries, start_period, start_interval))
    if not given:
        return None
    return {"Test": ["CMD-SHELL", cmd] if cmd else [],
            "Interval": runopts.duration_ns(interval) if interval else 0,
            "Timeout": runopts.duration_ns(timeout) if timeout else 0,
            "StartPeriod": runopts.duration_ns(start_period) if start_period else 0,
            "StartInterval": runopts.duration_ns(start_interval) if start_interval else 0,
            "Retries": retries or 0}


def _stream_names(o: dict[str, Any]) -> list[str]:
    names = [name.lower() for name in o["attach"] or []]
    for name, given in zip(names, o["attach"] or []):
        if name not in ("stdin", "stdout", "stderr"):
            raise CLIError(f'invalid argument "{given}" for "-a, --attach" flag: valid streams are STDIN, STDOUT '
                           "and STDERR", runopts.USAGE)
    return names


def check_detached_attach(o: dict[str, Any]) -> None:
    """docker run -d refuses -a once the flags are parsed: exit code 1, not a flag error's 125."""
    if _stream_names(o):
        raise CLIError("conflicting options: cannot specify both --attach and --detach")


def attach_streams(o: dict[str, Any], detach: bool) -> tuple[bool, bool, bool]:
    """The streams docker attaches (and writes in Config.Attach*): those -a names, stdin with -i, stdout
    and stderr when -a is not given; none for a detached run."""
    names = _stream_names(o)
    if detach:
        return False, False, False
    return "stdin" in names or o["interactive"], "stdout" in names or not names, "stderr" in names or not names


def _sizes(o: dict[str, Any]) -> dict[str, int]:
    sizes = {}
    for field, flag, key, parse in (("ShmSize", "--shm-size", "shm_size", runopts.ram_in_bytes),
                                    ("MemorySwap", "--memory-swap", "memory_swap", hostopts.memory_swap),
                                    ("MemoryReservation", "--memory-reservation", "memory_reservation",
                                     runopts.ram_in_bytes),
                                    ("IOMaximumBandwidth", "--io-maxbandwidth", "io_maxbandwidth", runopts.ram_in_bytes),
                                    ("KernelMemory", "--kernel-memory", "kernel_memory", runopts.ram_in_bytes)):
        try:
            sizes[field] = parse(o[key]) if o[key] else 0
        except ValueError:
            raise CLIError(f'invalid argument "{o[key]}" for "{flag}" flag: invalid size: \'{o[key]}\'',
                           runopts.USAGE) from None
    if sizes.pop("KernelMemory"):
        # docker 28 parses the flag and sends nothing for it (the API no longer has a kernel memory limit).
        print("WARNING: --kernel-memory is deprecated and has no effect", file=sys.stderr)
    return sizes


# The HostConfig fields this CLI has no flag for, with the zero values the docker CLI sends for them (the
# daemon keeps what it is sent, and inspect shows it).
_UNSET_HOST_FIELDS: dict[str, Any] = {"Cgroup": "", "MaskedPaths": None, "ReadonlyPaths": None}


def _resource_fields(o: dict[str, Any]) -> dict[str, Any]:
    """The HostConfig fields of the block I/O, cgroup, device-request, storage and runtime flags."""
    fields: dict[str, Any] = {
        "BlkioWeight": resourceopts.blkio_weight(o["blkio_weight"]),
        "BlkioWeightDevice": resourceopts.weight_devices(o["blkio_weight_device"]),
        "BlkioDeviceReadBps": resourceopts.throttle_bps("--device-read-bps", o["device_read_bps"]),
        "BlkioDeviceWriteBps": resourceopts.throttle_bps("--device-write-bps", o["device_write_bps"]),
        "BlkioDeviceReadIOps": resourceopts.throttle_iops("--device-read-iops", o["device_read_iops"]),
        "BlkioDeviceWriteIOps": resourceopts.throttle_iops("--device-write-iops", o["device_write_iops"]),
        "DeviceCgroupRules": resourceopts.cgroup_rules(o["device_cgroup_rule"]),
        "DeviceRequests": [resourceopts.gpu_request(g) for g in o["gpus"] or []] or None,
        **resourceopts.namespace_modes(o["cgroupns"], o["userns"]), "CgroupParent": o["cgroup_parent"] or "",
        "Isolation": o["isolation"] or "",
        "MemorySwappiness": resourceopts.swappiness(o["memory_swappiness"]),
        "CpuRealtimePeriod": o["cpu_rt_period"] or 0, "CpuRealtimeRuntime": o["cpu_rt_runtime"] or 0,
        "CpuCount": o["cpu_count"] or 0, "CpuPercent": o["cpu_percent"] or 0,
        "IOMaximumIOps": o["io_maxiops"] or 0,
        "VolumeDriver": o["volume_driver"] or "", "VolumesFrom": o["volumes_from"] or None,
        "Links": o["link"] or None,
    }
    if o["runtime"]:
        fields["Runtime"] = o["runtime"]
    annotations = key_values(o["annotation"])
    if annotations:
        fields["Annotations"] = annotations
    storage = resourceopts.storage_opts(o["storage_opt"])
    if storage:
        fields["StorageOpt"] = storage
    return fields


def _host_fields(o: dict[str, Any]) -> dict[str, Any]:
    """The HostConfig fields of the security, namespace, resource and logging flags, as docker sends them."""
    security, unconfined_paths = hostopts.security_options(o["security_opt"])
    fields: dict[str, Any] = {
        **_UNSET_HOST_FIELDS,
        "CapAdd": hostopts.capabilities(o["cap_add"]), "CapDrop": hostopts.capabilities(o["cap_drop"]),
        "Privileged": o["privileged"], "ReadonlyRootfs": o["read_only"], "SecurityOpt": security,
        "ExtraHosts": hostopts.extra_hosts(o["add_host"]), "Dns": hostopts.dns_servers(o["dns"]),
        "DnsSearch": hostopts.dns_search(o["dns_search"]), "DnsOptions": o["dns_option"] or [],
        "Ulimits": hostopts.ulimits(o["ulimit"]), **_sizes(o), "PidsLimit": o["pids_limit"] or 0,
        "CpuShares": o["cpu_shares"] or 0, "CpuPeriod": o["cpu_period"] or 0, "CpuQuota": o["cpu_quota"] or 0,
        "CpusetCpus": o["cpuset_cpus"] or "", "CpusetMems": o["cpuset_mems"] or "",
        "Devices": [hostopts.device(d) for d in o["device"] or []],
        "Sysctls": hostopts.sysctls(o["sysctl"]), **hostopts.namespace_modes(o["ipc"], o["pid"], o["uts"]),
        "GroupAdd": o["group_add"] or None, "OomKillDisable": o["oom_kill_disable"],
        "OomScoreAdj": o["oom_score_adj"] or 0, "ContainerIDFile": o["cidfile"] or "",
        "LogConfig": hostopts.log_config(o["log_driver"], o["log_opt"]),
        **_resource_fields(o),
    }
    if unconfined_paths:
        fields["MaskedPaths"] = fields["ReadonlyPaths"] = []
    return fields


def create_body(o: dict[str, Any], detach: bool) -> dict[str, Any]:
    """POST /containers/create's body from the shared options; `detach` for a run that attaches to nothing."""
    no_content_trust(o["disable_content_trust"])
    tty, interactive = o["tty"], o["interactive"]
    stdin, stdout, stderr = attach_streams(o, detach)
    rows, cols = terminal_size() if tty and sys.stdout.isatty() else (0, 0)
    binds, anonymous = runopts.volumes(o["volume"] or [])
    exposed, bindings = runopts.ports(o["publish"] or [], o["expose"] or [])
    network_mode, endpoints = netopts.networking(o)
    # The files first, so that the command line's own values win.
    labels = key_values([line for f in o["label_file"] or [] for line in hostopts.read_kv_file(f, False)])
    labels.update(key_values(o["label"]))
    env = [line for f in o["env_file"] or [] for line in hostopts.read_kv_file(f, True)]
    env += env_list(o["env"]) or []
    if o["health_on_failure"] is not None:
        # The engine reads the action from this label (the API has no field for it).
        labels["io.pyengine.health-on-failure"] = o["health_on_failure"]
    healthcheck = _healthcheck(o["health_cmd"], o["health_interval"], o["health_timeout"], o["health_retries"],
                               o["health_start_period"], o["health_start_interval"], o["no_healthcheck"])
    memory, cpus = o["memory"], o["cpus"]
    restart = runopts.restart_policy(o["restart"] or "no")
    if o["rm"] and restart["Name"] != "no":
        raise CLIError("conflicting options: cannot specify both --restart and --rm", runopts.USAGE)
    body: dict[str, Any] = {
        "Hostname": o["hostname"] or "", "Domainname": o["domainname"] or "",
        "Image": o["image"], "Cmd": o["command"] or None, "Tty": tty, "OpenStdin": interactive,
        "StdinOnce": interactive and stdin, "AttachStdin": stdin,
        "AttachStdout": stdout, "AttachStderr": stderr, "Env": env or None, "User": o["user"] or "",
        "WorkingDir": o["workdir"] or "", "Labels": labels, "Healthcheck": healthcheck,
        "Entrypoint": None if o["entrypoint"] is None else [o["entrypoint"]],
        "ExposedPorts": exposed or None, "Volumes": anonymous, "StopSignal": o["stop_signal"] or None,
        "OnBuild": None,
        "HostConfig": {
            "Binds": binds or None, "Mounts": [runopts.mount(m) for m in o["mount"] or []] or None,
            "Tmpfs": runopts.tmpfs(o["tmpfs"] or []) or None, "NetworkMode": network_mode,
            "PortBindings": bindings, "PublishAllPorts": o["publish_all"], "AutoRemove": o["rm"],
            "Init": o["init"], "Memory": memory or 0,
            "NanoCpus": int(cpus * 1e9) if cpus else 0, "ConsoleSize": [rows, cols],
            "RestartPolicy": restart,
            **_host_fields(o),
        },
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }
    if o["stop_timeout"] is not None:
        body["StopTimeout"] = o["stop_timeout"]
    return body


_PULL_POLICIES = ("always", "missing", "never")


def _pull(e: Engine, o: dict[str, Any]) -> None:
    # Tagged beforehand: docker's run does not announce the default tag as its pull does.
    pull_image(e, with_tag(o["image"]), sys.stderr, quiet=o["quiet"], platform=o["platform"])


def _post_create(e: Engine, o: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Create, pulling the image first as --pull says: always, or when the daemon does not have it."""
    if o["pull"] == "always":
        _pull(e, o)
    query = {"name": o["name"], "platform": o["platform"]}
    try:
        created: dict[str, Any] = e.post("/containers/create", query, body)
    except DaemonError as err:
        if o["pull"] != "missing" or err.status != 404 or not err.daemon_message.startswith("No such image"):
            raise
        if not o["quiet"]:
            print(f"Unable to find image '{with_tag(o['image'])}' locally", file=sys.stderr)
        _pull(e, o)
        created = e.post("/containers/create", query, body)
    return created


def create_container(e: Engine, o: dict[str, Any], body: dict[str, Any]) -> str:
    """Create (see `_post_create`), writing the ID to --cidfile if given; the new container's ID."""
    if o["pull"] not in _PULL_POLICIES:
        raise CLIError(f"invalid pull option: '{o['pull']}': must be one of \"always\", \"missing\" or \"never\"",
                       runopts.USAGE)
    resourceopts.windows_only(o, e)
    logins = apisocket.add_to(e, body) if o["use_api_socket"] else None
    cidfile = o["cidfile"]
    if cidfile:
        # As docker: refused if the file is there already, made before the create and removed if it fails.
        if os.path.exists(cidfile):
            raise CLIError(f"container ID file found, make sure the other container isn't running or delete "
                           f"{cidfile}", runopts.USAGE)
        try:
            open(cidfile, "x").close()
        except OSError as err:
            raise CLIError(f"failed to create the container ID file: {err}", runopts.USAGE) from None
    try:
        created = _post_create(e, o, body)
        if cidfile:
            with open(cidfile, "w") as f:
                f.write(str(created["Id"]))
        if logins:
            apisocket.copy_in(e, str(created["Id"]), logins)
    except BaseException:
        if cidfile:
            with contextlib.suppress(OSError):
                os.remove(cidfile)
        raise
    for warning in created.get("Warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    return str(created["Id"])
