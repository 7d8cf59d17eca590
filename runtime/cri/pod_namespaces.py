"""A pod's shared namespaces, held by its pause process or pinned to files without one.

A pause process exists to keep the pod's namespaces alive while its containers come and go. Only a PID
namespace needs a living process for that (it ends with its init), and the pod's sysctls are written by
runc inside the pause container. A pod that shares no PID namespace and sets no sysctls gets no pause
process (CRI-O's `drop_infra_ctr` does the same with its `pinns`): `unshare` makes its IPC and UTS
namespaces, sets the pod's hostname in the UTS one and leaves both bind-mounted on files in the pod's
directory, as the CNI leaves the pod's network namespace. That saves a monitor, a `runc create` and a
`runc start` per pod, and the memory of both processes. `[cri] drop_infra_container = false` keeps a pause
process in every pod.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from cri_api.v1 import api_pb2 as cri

from runtime.errors import Internal
from runtime.mount import unmount

UNSHARE = "/usr/bin/unshare"
HOSTNAME = "/usr/bin/hostname"


@dataclass(frozen=True)
class PodNamespaces:
    """What a container of the pod joins: a namespace path, or "host" for the node's."""

    net: str
    ipc: str
    uts: str
    pid: str | None  # the pause process's; None when the pod has no shared PID namespace to join


def needs_pause(config: cri.PodSandboxConfig) -> bool:
    return config.linux.security_context.namespace_options.pid == cri.POD or bool(config.linux.sysctls)


def of_pause(pid: int, *, host_network: bool, host_ipc: bool) -> PodNamespaces:
    return PodNamespaces(net="host" if host_network else f"/proc/{pid}/ns/net",
                         ipc="host" if host_ipc else f"/proc/{pid}/ns/ipc",
                         uts="host" if host_network else f"/proc/{pid}/ns/uts",
                         pid=f"/proc/{pid}/ns/pid")


def of_pins(pinned: dict[str, str], netns: str) -> PodNamespaces:
    return PodNamespaces(net=netns or "host", ipc=pinned.get("ipc", "host"), uts=pinned.get("uts", "host"), pid=None)


async def pin(directory: str, *, ipc: bool, uts: bool, hostname: str) -> dict[str, str]:
    """New IPC and/or UTS namespaces bind-mounted on files in `directory`, the hostname set in the UTS one."""
    kinds = [k for k, wanted in (("ipc", ipc), ("uts", uts)) if wanted]
    if not kinds:
        return {}
    paths = {k: os.path.join(directory, k) for k in kinds}
    await asyncio.to_thread(_make_files, directory, list(paths.values()))
    command = [UNSHARE, *(f"--{k}={p}" for k, p in paths.items()), "--"]
    command += [HOSTNAME, hostname] if uts and hostname else ["true"]
    proc = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        await asyncio.to_thread(unpin, paths)
        raise Internal(f"pinning the pod's {' and '.join(kinds)} namespaces failed: "
                       f"{err.decode(errors='replace').strip() or f'exit {proc.returncode}'}")
    return paths


def unpin(pinned: dict[str, str]) -> None:
    """Let the pinned namespaces go (they end once no process is left in them). Idempotent; run in a thread."""
    for path in pinned.values():
        unmount(path, detach=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _make_files(directory: str, paths: list[str]) -> None:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for path in paths:
        with open(path, "a"):
            pass
