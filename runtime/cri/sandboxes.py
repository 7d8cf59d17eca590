"""Pod sandboxes: the pod's network, IPC and UTS namespaces, held by a pause process or pinned to files.

RunPodSandbox reserves the pod attempt's name, makes the pod's /etc files and /dev/shm, asks the
pod network for a namespace (unless the pod uses the node's), then either pins the pod's IPC and UTS
namespaces (runtime/cri/pod_namespaces.py says when) or creates and starts the pause container in it.
The pod is a runtime container either way, whose labels carry its record. Each step is undone if a
later one fails, so a retry by the kubelet starts clean.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
from typing import Any, Protocol

from cri_api.v1 import api_pb2 as cri

from runtime.containers import ContainerCreate
from runtime.cri import pod_namespaces
from runtime.cri.network import PodNetworkRequest
from runtime.cri.pod_namespaces import PodNamespaces
from runtime.cri.records import SandboxRecord, sandbox_labels, sandbox_name
from runtime.cri.scope import in_namespace
from runtime.cri.spec import pod_hostname, sandbox_options
from runtime.cri.state import CRIState, ensure_dir, pod_dirs
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from runtime.mount import is_mountpoint, mount_all, unmount
from runtime.mount import Mount as HostMount
from runtime.tasks.state import Status

log = logging.getLogger("runtime.cri")

_PROTOCOLS = {cri.TCP: "tcp", cri.UDP: "udp", cri.SCTP: "sctp"}
SHM_SIZE = "65536k"
STOP_GRACE = 2.0


def _hosts(hostname: str) -> str:
    return ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n"
            f"127.0.1.1\t{hostname}\n")


def _resolv_conf(dns: cri.DNSConfig | None) -> str:
    if dns is None or not (dns.servers or dns.searches or dns.options):
        try:
            with open("/etc/resolv.conf") as fh:
                return fh.read()
        except OSError:
            return ""
    lines = [f"search {' '.join(dns.searches)}"] if dns.searches else []
    lines += [f"nameserver {s}" for s in dns.servers]
    if dns.options:
        lines.append(f"options {' '.join(dns.options)}")
    return "\n".join(lines) + "\n"


def network_request(record: SandboxRecord) -> PodNetworkRequest:
    config = record.pod_config()
    m = config.metadata
    ports = [{"hostPort": p.host_port, "containerPort": p.container_port,
              "protocol": _PROTOCOLS.get(p.protocol, "tcp"), "hostIP": p.host_ip}
             for p in config.port_mappings if p.host_port]
    dns = {"servers": list(config.dns_config.servers), "searches": list(config.dns_config.searches),
           "options": list(config.dns_config.options)}
    return PodNetworkRequest(sandbox_id=record.id, name=m.name, namespace=m.namespace, uid=m.uid,
                             port_mappings=ports, dns=dns)


def _validate(config: cri.PodSandboxConfig) -> None:
    m = config.metadata
    if not config.HasField("metadata") or not m.name or not m.namespace or not m.uid:
        raise InvalidArgument("sandbox config must include metadata with a name, namespace and uid")
    if config.linux.security_context.namespace_options.network == cri.TARGET:
        raise InvalidArgument("a pod's network namespace cannot target a container")


class Sandboxes:
    def __init__(self, state: CRIState) -> None:
        self._s = state

    async def run(self, config: cri.PodSandboxConfig, runtime_handler: str) -> str:
        _validate(config)
        if runtime_handler not in ("", "runc"):
            raise InvalidArgument(f"no runtime for {runtime_handler!r} is configured (have: runc)")
        s = self._s
        sandbox_id = secrets.token_hex(32)
        name = sandbox_name(config.metadata)
        s.sandboxes.reserve(name, sandbox_id)
        record = SandboxRecord.new(sandbox_id, config, runtime_handler)
        undo: list[tuple[str, object]] = []
        try:
            await self._run(record, config, undo)
        except BaseException:
            s.sandboxes.release(name)
            await self._undo(record, undo)
            raise
        s.sandboxes.add(sandbox_id, record)
        log.info("cri sandbox=%s pod=%s/%s started", sandbox_id[:12], config.metadata.namespace,
                 config.metadata.name)
        return sandbox_id

    async def _image_config(self) -> tuple[str, dict[str, Any]]:
        s = self._s
        found = await s.catalog.lookup(s.config.sandbox_image)
        if found is None:
            await s.catalog.pull(s.config.sandbox_image, None)
            found = await s.catalog.lookup(s.config.sandbox_image)
            if found is None:
                raise NotFound(f"sandbox image {s.config.sandbox_image} not found after its pull")
        facts, images = found
        return images[0].name, facts.config

    async def _run(self, record: SandboxRecord, config: cri.PodSandboxConfig, undo: list[tuple[str, object]]) -> None:
        s = self._s
        image, image_config = await self._image_config()
        sc = config.linux.security_context
        nso = sc.namespace_options
        etc_dir, shm_dir = pod_dirs(s, record.id)
        hostname = os.uname().nodename if nso.network == cri.NODE else pod_hostname(config)
        await asyncio.to_thread(self._write_etc, etc_dir, hostname, config)
        undo.append(("dir", str(s.sandbox_dir(record.id))))
        use_shm = nso.ipc != cri.NODE
        if use_shm:
            await asyncio.to_thread(self._mount_shm, shm_dir)
            undo.append(("shm", shm_dir))
        if nso.network == cri.NODE:
            netns = "host"
        else:
            reason = await s.network.not_ready()
            if reason:
                raise FailedPrecondition(f"the pod network is not ready: {reason}")
            result = await s.network.setup(network_request(record))
            undo.append(("network", result.netns))
            record.netns = result.netns
            record.ip = result.ips[0] if result.ips else ""
            record.additional_ips = result.ips[1:]
            netns = result.netns
        parent = config.linux.cgroup_parent or None
        # The pause container's options are checked (and its record made) whether or not it will run.
        opts = sandbox_options(config, image_config, netns=netns, host_pid=nso.pid == cri.NODE,
                               host_ipc=nso.ipc == cri.NODE, etc_dir=etc_dir, shm_dir=shm_dir if use_shm else None,
                               cgroup_parent=parent)
        record.pause = not s.config.drop_infra_container or pod_namespaces.needs_pause(config)
        if not record.pause:
            undo.append(("pins", record))
            record.pinned = await pod_namespaces.pin(
                str(s.sandbox_dir(record.id) / "ns"), ipc=nso.ipc != cri.NODE, uts=nso.network != cri.NODE,
                hostname=hostname)
        with in_namespace(s.namespace):
            await s.containers.create(ContainerCreate(id=record.id, image=image, snapshotter=s.config.snapshotter,
                                                      labels=sandbox_labels(record), options=opts))
            undo.append(("container", record.id))
            if record.pause:
                await s.tasks.create(record.id, terminal=False)
                undo.append(("task", record.id))
                await s.tasks.start(record.id)

    @staticmethod
    def _write_etc(etc_dir: str, hostname: str, config: cri.PodSandboxConfig) -> None:
        ensure_dir(etc_dir)
        with open(os.path.join(etc_dir, "hostname"), "w") as fh:
            fh.write(hostname + "\n")
        with open(os.path.join(etc_dir, "hosts"), "w") as fh:
            fh.write(_hosts(hostname))
        with open(os.path.join(etc_dir, "resolv.conf"), "w") as fh:
            fh.write(_resolv_conf(config.dns_config if config.HasField("dns_config") else None))

    @staticmethod
    def _mount_shm(shm_dir: str) -> None:
        ensure_dir(shm_dir)
        if not is_mountpoint(shm_dir):
            mount_all([HostMount(type="tmpfs", source="shm",
                                 options=["nosuid", "nodev", "noexec", "mode=1777", f"size={SHM_SIZE}"])], shm_dir)

    async def _undo(self, record: SandboxRecord, undo: list[tuple[str, object]]) -> None:
        s = self._s
        for what, arg in reversed(undo):
            try:
                with in_namespace(s.namespace):
                    if what == "task":
                        await s.tasks.delete(str(arg), force=True)
                    elif what == "container":
                        await s.containers.delete(str(arg))
                if what == "network":
                    await s.network.teardown(network_request(record), str(arg))
                elif what == "pins":
                    await asyncio.to_thread(pod_namespaces.unpin, record.pinned)
                elif what == "shm":
                    await asyncio.to_thread(_unmount_quiet, str(arg))
                elif what == "dir":
                    await asyncio.to_thread(shutil.rmtree, str(arg), True)
            except Exception:
                log.exception("cri sandbox=%s undoing %s failed", record.id[:12], what)

    async def stop(self, sandbox_id: str, containers_stop: "ContainerStopper") -> None:
        s = self._s
        record = s.sandboxes.get(sandbox_id)
        for c in s.containers_of(record.id):
            await containers_stop.stop(c.id, 0)
        t = s.task(record.id)
        if t is not None and t.status in (Status.RUNNING, Status.PAUSED, Status.CREATED):
            with in_namespace(s.namespace):
                try:
                    await s.tasks.kill(record.id, signal.SIGKILL, all=True)
                except (FailedPrecondition, NotFound):
                    pass
                try:
                    await asyncio.wait_for(s.tasks.wait(record.id), STOP_GRACE * 5)
                except (asyncio.TimeoutError, NotFound):
                    pass
        await asyncio.to_thread(pod_namespaces.unpin, record.pinned)
        if record.netns and not record.stopped:
            await s.network.teardown(network_request(record), record.netns)
        await asyncio.to_thread(_unmount_quiet, pod_dirs(s, record.id)[1])
        if not record.stopped:
            record.stopped = True
            await self._save(record)

    async def _save(self, record: SandboxRecord) -> None:
        s = self._s
        with in_namespace(s.namespace):
            c = await s.containers.store.get(record.id)
            await s.containers.store.set_labels(record.id, {**c.labels, **sandbox_labels(record)})

    async def remove(self, sandbox_id: str, containers_remove: "ContainerRemover",
                     containers_stop: "ContainerStopper") -> None:
        s = self._s
        record = s.sandboxes.find(sandbox_id)
        if record is None:
            return  # idempotent: the kubelet retries removals
        await self.stop(record.id, containers_stop)
        for c in s.containers_of(record.id):
            await containers_remove.remove(c.id)
        await s.delete_runtime_container(record.id)
        await asyncio.to_thread(shutil.rmtree, s.sandbox_dir(record.id), True)
        s.sandboxes.remove(record.id)
        log.info("cri sandbox=%s removed", record.id[:12])

    def state_of(self, record: SandboxRecord) -> cri.PodSandboxState.ValueType:
        if record.stopped:
            return cri.SANDBOX_NOTREADY
        if not record.pause:
            return cri.SANDBOX_READY
        t = self._s.task(record.id)
        return cri.SANDBOX_READY if t is not None and t.status == Status.RUNNING else cri.SANDBOX_NOTREADY

    def namespaces(self, record: SandboxRecord) -> PodNamespaces:
        """What the pod's containers join; FailedPrecondition once the pod is not ready."""
        if self.state_of(record) != cri.SANDBOX_READY:
            raise FailedPrecondition(f"sandbox {record.id} is not ready")
        if not record.pause:
            return pod_namespaces.of_pins(record.pinned, record.netns)
        t = self._s.task(record.id)
        assert t is not None  # READY with a pause process: its task runs
        nso = record.pod_config().linux.security_context.namespace_options
        return pod_namespaces.of_pause(t.pid, host_network=nso.network == cri.NODE, host_ipc=nso.ipc == cri.NODE)


def _unmount_quiet(path: str) -> None:
    if os.path.isdir(path) and is_mountpoint(path):
        unmount(path, detach=True)


class ContainerStopper(Protocol):
    async def stop(self, container_id: str, timeout: int) -> None: ...


class ContainerRemover(Protocol):
    async def remove(self, container_id: str) -> None: ...
