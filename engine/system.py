"""GET /version and GET /info: what the engine, the runtime and the host kernel are, in Docker's shapes.

Every field is read from what it describes: container counts from the engine's records (Docker's
containers, not the runtime's), images as Docker counts them (by ID), the kernel's cgroup features
from the runtime's one-time probe, a daemon ID kept under the data root across restarts.
"""
from __future__ import annotations

import asyncio
import datetime
import os
import platform
import uuid
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from engine import __version__
from engine.config import Config
from engine.runtimes import RuntimeTable
from engine.containers.hostlimits import Features
from engine.containers.state import Status
from engine.containers.store import ContainerStore
from engine.events import EventBus
from engine.images.store import ImageService
from engine.logs import settings as log_settings
from runtime.client import RuntimeAPI


class SystemInfo:
    def __init__(self, runtime: RuntimeAPI, host: Features, config: Config, containers: ContainerStore,
                 images: ImageService, events: EventBus) -> None:
        self._rt = runtime
        self._host = host
        self._config = config
        self._containers = containers
        self._images = images
        self._events = events
        self.id = _daemon_id(Path(config.data_root) / "engine-id")

    async def version(self, api_version: str, min_api_version: str) -> dict[str, Any]:
        """The API versions are the caller's: the API layer knows which it serves."""
        uname = os.uname()
        return {
            "Platform": {"Name": "pyengine"},
            "Components": [
                {"Name": "Engine", "Version": __version__,
                 "Details": {"ApiVersion": api_version, "MinAPIVersion": min_api_version, "Os": "linux",
                             "Arch": _arch(), "KernelVersion": uname.release,
                             "Experimental": str(self._config.experimental).lower(), "GitCommit": "pyengine",
                             "GoVersion": f"python{platform.python_version()}", "BuildTime": ""}},
                {"Name": "pyruntimed", "Version": (await self._rt.version()).version, "Details": {}},
            ],
            "Version": __version__,
            "ApiVersion": api_version,
            "MinAPIVersion": min_api_version,
            "GitCommit": "pyengine",
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux",
            "Arch": _arch(),
            "KernelVersion": uname.release,
            "Experimental": self._config.experimental,
            "BuildTime": "",
        }

    async def info(self) -> dict[str, Any]:
        images = await self._images.images()
        containers = self._containers.all()
        running = sum(1 for c in containers if c.state.running)
        paused = sum(1 for c in containers if c.state.status == Status.PAUSED)
        uname = os.uname()
        f = await self._host.features()
        forwarding = _ipv4_forwarding()
        config = self._config
        runtime = await self._rt.version()
        doc = {
            "ID": self.id, "Containers": len(containers), "ContainersRunning": running - paused,
            "ContainersPaused": paused, "ContainersStopped": len(containers) - running,
            "Images": len(images), "Driver": "overlayfs", "DriverStatus": [],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": None,
                        "Log": list(log_settings.LISTED)},
            "MemoryLimit": f["memory_limit"], "SwapLimit": f["swap_limit"], "KernelMemory": f["kernel_memory"],
            "KernelMemoryTCP": f["kernel_memory_tcp"], "CpuCfsPeriod": f["cpu_cfs"], "CpuCfsQuota": f["cpu_cfs"],
            "CPUShares": f["cpu_shares"], "CPUSet": f["cpuset"], "PidsLimit": f["pids_limit"],
            "OomKillDisable": f["oom_kill_disable"], "IPv4Forwarding": forwarding,
            "Debug": config.effective_log_level == "debug", "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": len(asyncio.all_tasks()), "SystemTime": _now(), "LoggingDriver": config.log_driver, "CgroupDriver": f["cgroup_driver"],
            "CgroupVersion": f["cgroup_version"],
            "NEventsListener": self._events.listeners, "KernelVersion": uname.release, "OperatingSystem": _os_name(),
            "OSVersion": _os_release("VERSION_ID"), "OSType": "linux", "Architecture": uname.machine, "NCPU": os.cpu_count() or 1,
            "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"Mirrors": config.registry_mirrors,
                               "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                               "IndexConfigs": _index_configs(config.registry_mirrors, config.insecure_registries)},
            "DockerRootDir": config.data_root, "Name": uname.nodename, "Labels": list(config.labels),
            "ExperimentalBuild": config.experimental, "ServerVersion": __version__,
            "Runtimes": RuntimeTable(config).info(), "DefaultRuntime": RuntimeTable(config).default,
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
                      "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "tini",
            # dockerd's containerd is this engine's pyruntimed.
            "ContainerdCommit": {"ID": runtime.version},
            "RuncCommit": {"ID": runtime.runtimes.get("runc", "")}, "InitCommit": {"ID": ""},
            "HttpProxy": _proxy("HTTP_PROXY"), "HttpsProxy": _proxy("HTTPS_PROXY"), "NoProxy": _proxy("NO_PROXY"),
            "GenericResources": None,
            "SecurityOptions": _security_options(f), "Warnings": _warnings(f, forwarding),
            # The runtime is this engine's containerd; it runs no plugins, so there is no plugin namespace.
            "Containerd": {"Address": config.runtime_address,
                           "Namespaces": {"Containers": config.runtime_namespace}},
            # netavark, which wires the networks, drives iptables on this Debian release.
            "FirewallBackend": {"Driver": "iptables"},
            "DiscoveredDevices": [],
            "CDISpecDirs": [],  # no CDI: device requests by CDI name are refused
        }
        # Since API 1.42 dockerd leaves out the kernel memory fields on a host that lacks the feature.
        for key in ("KernelMemory", "KernelMemoryTCP"):
            if not doc[key]:
                del doc[key]
        return doc


def _proxy(name: str) -> str:
    """The proxy setting of the environment the daemons were started in, upper or lower case, as dockerd
    reports its own."""
    return os.environ.get(name) or os.environ.get(name.lower()) or ""


# dockerd's words for what the host's kernel lacks, in its order.
_MISSING = (("memory_limit", "No memory limit support"), ("swap_limit", "No swap limit support"),
            ("oom_kill_disable", "No oom kill disable support"), ("cpu_cfs", "No cpu cfs quota support"),
            ("cpu_cfs", "No cpu cfs period support"), ("cpu_shares", "No cpu shares support"),
            ("cpuset", "No cpuset support"), ("blkio_weight", "No blkio weight support"),
            ("blkio_weight_device", "No blkio weight_device support"),
            ("blkio_read_bps_device", "No blkio throttle.read_bps_device support"),
            ("blkio_write_bps_device", "No blkio throttle.write_bps_device support"),
            ("blkio_read_iops_device", "No blkio throttle.read_iops_device support"),
            ("blkio_write_iops_device", "No blkio throttle.write_iops_device support"))


# dockerd's: blkio weights went from cgroup v1 with kernel 5.0, and nothing can bring them back there, so the
# warning is for cgroup v2 only; oom-kill-disable is a cgroup v1 knob.
_V2_ONLY = frozenset({"blkio_weight", "blkio_weight_device"})
_V1_ONLY = frozenset({"oom_kill_disable"})


def _warnings(features: Mapping[str, Any], forwarding: bool) -> list[str]:
    v2 = str(features.get("cgroup_version")) == "2"
    out = [f"WARNING: {text}" for key, text in _MISSING if not features.get(key)
           and not (key in _V2_ONLY and not v2) and not (key in _V1_ONLY and v2)]
    if not forwarding:
        out.append("WARNING: IPv4 forwarding is disabled")
    return out


def _security_options(features: Mapping[str, Any]) -> list[str]:
    # AppArmor is not named even on a host that has it: containers get no profile of the engine's (docs/compatibility.md).
    return ["name=seccomp,profile=default"] if features.get("seccomp") else []


def _daemon_id(path: Path) -> str:
    """The engine's ID, made once and kept: clients and tools tell daemons apart by it."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    daemon_id = str(uuid.uuid4())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(daemon_id + "\n")
    os.replace(tmp, path)
    return daemon_id


def _ipv4_forwarding() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward", encoding="ascii") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return False


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _os_name() -> str:
    return _os_release("PRETTY_NAME") or "Linux"


def _os_release(key: str) -> str:
    try:
        with open("/etc/os-release") as fh:
            for line in fh:
                if line.startswith(key + "="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def _index_configs(mirrors: list[str], insecure: list[str]) -> dict[str, Any]:
    """RegistryConfig.IndexConfigs as dockerd shows them: Docker Hub's always, then each insecure registry's."""
    out: dict[str, Any] = {"docker.io": {"Name": "docker.io", "Mirrors": list(mirrors), "Secure": True,
                                         "Official": True}}
    for host in insecure:
        if "/" not in host:  # CIDRs go to InsecureRegistryCIDRs, not here
            out[host] = {"Name": host, "Mirrors": [], "Secure": False, "Official": False}
    return out
