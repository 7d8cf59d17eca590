"""_ping, version, info."""
from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from engine import __version__
from engine.api.app import API_VERSION, MIN_API_VERSION, Router
from engine.api.responses import json_response
from engine.backend import Backend

_PING_HEADERS = {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Builder-Version": "1",
}


def register(r: Router, b: Backend) -> None:
    async def ping(request: web.Request) -> web.Response:
        if request.method == "HEAD":
            return web.Response(status=200, headers={**_PING_HEADERS, "Content-Length": "0"})
        return web.Response(status=200, body=b"OK", headers=_PING_HEADERS)

    async def version(_: web.Request) -> web.Response:
        uname = os.uname()
        return json_response({
            "Platform": {"Name": "pyengine"},
            "Components": [
                {"Name": "Engine", "Version": __version__,
                 "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                             "Arch": _arch(), "KernelVersion": uname.release, "Experimental": "false"}},
                {"Name": "pyruntimed", "Version": (await b.runtime.version())["version"], "Details": {}},
            ],
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "pyengine",
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux",
            "Arch": _arch(),
            "KernelVersion": uname.release,
            "Experimental": False,
            "BuildTime": "",
        })

    async def info(_: web.Request) -> web.Response:
        images = await b.runtime.images()
        containers = await b.runtime.containers()
        tasks = {t["id"]: t["status"] for t in await b.runtime.tasks()}
        running = sum(1 for s in tasks.values() if s == "running")
        paused = sum(1 for s in tasks.values() if s == "paused")
        uname = os.uname()
        f = await b.host.features()
        forwarding = _ipv4_forwarding()
        return json_response({
            "ID": "pyengine", "Containers": len(containers), "ContainersRunning": running,
            "ContainersPaused": paused, "ContainersStopped": len(containers) - running - paused,
            "Images": len(images), "Driver": "overlayfs", "DriverStatus": [],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["k8s-file"]},
            "MemoryLimit": f["memory_limit"], "SwapLimit": f["swap_limit"], "KernelMemory": f["kernel_memory"],
            "KernelMemoryTCP": f["kernel_memory_tcp"], "CpuCfsPeriod": f["cpu_cfs"], "CpuCfsQuota": f["cpu_cfs"],
            "CPUShares": f["cpu_shares"], "CPUSet": f["cpuset"], "PidsLimit": f["pids_limit"],
            "OomKillDisable": f["oom_kill_disable"], "IPv4Forwarding": forwarding,
            "Debug": b.config.log_level == "debug", "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": 0, "SystemTime": _now(), "LoggingDriver": "k8s-file", "CgroupDriver": f["cgroup_driver"],
            "CgroupVersion": f["cgroup_version"],
            "NEventsListener": 0, "KernelVersion": uname.release, "OperatingSystem": _os_name(),
            "OSVersion": "", "OSType": "linux", "Architecture": uname.machine, "NCPU": os.cpu_count() or 1,
            "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"Mirrors": b.config.registry_mirrors,
                               "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                               "IndexConfigs": {}},
            "DockerRootDir": b.config.data_root, "Name": uname.nodename, "Labels": [],
            "ExperimentalBuild": False, "ServerVersion": __version__,
            "Runtimes": {"runc": {"path": "runc"}}, "DefaultRuntime": "runc",
            "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False, "NodeID": "", "NodeAddr": ""},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "tini",
            "SecurityOptions": ["name=seccomp,profile=default"], "Warnings": _warnings(f, forwarding),
        })

    r.add("GET", "/_ping", ping)
    r.add("HEAD", "/_ping", ping)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)


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


def _warnings(features: Mapping[str, Any], forwarding: bool) -> list[str]:
    out = [f"WARNING: {text}" for key, text in _MISSING if not features.get(key)]
    if not forwarding:
        out.append("WARNING: IPv4 forwarding is disabled")
    return out


def _ipv4_forwarding() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward", encoding="ascii") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return False


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _os_name() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
