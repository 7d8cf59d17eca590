"""CRI containers: created in a ready pod, joined to its namespaces, logging where the kubelet reads.

A CRI container is a runtime container in the CRI namespace plus a task once started; its state
follows the task: no task or a created one is CONTAINER_CREATED, a live one RUNNING, a stopped one
EXITED with the exit code and time the monitor recorded (also across a runtime restart).
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
from typing import Any

from cri_api.v1 import api_pb2 as cri

from runtime.containers import ContainerCreate
from runtime.cri.records import ContainerRecord, container_labels, container_name, now_ns
from runtime.cri.sandboxes import Sandboxes
from runtime.cri.scope import in_namespace
from runtime.cri.spec import container_options, resource_options
from runtime.cri.state import CRIState, pod_dirs
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound, RuntimeError_
from runtime.tasks.spec_options import ResourceOptions
from runtime.tasks.state import Status

log = logging.getLogger("runtime.cri")

# conmon's control fifo: "<type> <height> <width>\n"; type 2 reopens the log file (the kubelet rotated it).
_CTL_REOPEN_LOG = "2 0 0\n"


def _signal(image_config: dict[str, Any]) -> int:
    name = str((image_config.get("config") or {}).get("StopSignal") or "SIGTERM").upper()
    if name.isdigit():
        return int(name)
    if not name.startswith("SIG"):
        name = "SIG" + name
    # The CRI's enum spells real-time signals SIGRTMINPLUS<n> and SIGRTMAXMINUS<n>.
    for prefix, base, sign in (("SIGRTMINPLUS", signal.SIGRTMIN, 1), ("SIGRTMAXMINUS", signal.SIGRTMAX, -1)):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return int(base) + sign * int(name[len(prefix):])
    try:
        return int(signal.Signals[name])
    except KeyError:
        return int(signal.SIGTERM)


class Containers:
    def __init__(self, state: CRIState, sandboxes: Sandboxes) -> None:
        self._s = state
        self._sandboxes = sandboxes

    async def create(self, sandbox_id: str, config: cri.ContainerConfig) -> str:
        s = self._s
        sandbox = s.sandboxes.get(sandbox_id)
        if not config.HasField("metadata") or not config.metadata.name:
            raise InvalidArgument("container config must include metadata with a name")
        if not config.image.image:
            raise InvalidArgument("container config must name an image")
        pod_ns = self._sandboxes.namespaces(sandbox)
        pod = sandbox.pod_config()
        container_id = secrets.token_hex(32)
        name = container_name(config.metadata, pod.metadata)
        s.cri_containers.reserve(name, container_id)
        try:
            found = await s.catalog.lookup(config.image.image)
            if found is None:
                raise NotFound(f"image {config.image.image!r} not found: pull it first")
            facts, images = found
            image_ref = next((i.name for i in images if "@" in i.name), images[0].name)
            log_path = ""
            if pod.log_directory and config.log_path:
                log_path = os.path.normpath(os.path.join(pod.log_directory, config.log_path))
                if not log_path.startswith(os.path.normpath(pod.log_directory) + "/"):
                    raise InvalidArgument(f"log path {config.log_path!r} leaves the pod's log directory")
            target_pid = None
            nso = config.linux.security_context.namespace_options
            if nso.pid == cri.TARGET:
                target = s.cri_containers.get(nso.target_id)
                t = s.task(target.id)
                target_pid = t.pid if t is not None and t.status == Status.RUNNING else None
            etc_dir, shm_dir = pod_dirs(s, sandbox.id)
            host_ipc = pod.linux.security_context.namespace_options.ipc == cri.NODE
            opts = container_options(config, facts.config, pod_ns=pod_ns, sandbox=pod, etc_dir=etc_dir,
                                     shm_dir=None if host_ipc else shm_dir, target_pid=target_pid,
                                     cgroup_parent=pod.linux.cgroup_parent or None)
            record = ContainerRecord.new(container_id, sandbox.id, config, image_ref, facts.id, log_path)
            record.image_name = next((i.name for i in images if "@" not in i.name), "")
            with in_namespace(s.namespace):
                await s.containers.create(ContainerCreate(id=container_id, image=images[0].name,
                                                          snapshotter=s.config.snapshotter,
                                                          labels=container_labels(record), options=opts))
        except BaseException:
            s.cri_containers.release(name)
            raise
        s.cri_containers.add(container_id, record)
        return container_id

    async def start(self, container_id: str) -> None:
        s = self._s
        record = s.cri_containers.get(container_id)
        sandbox = s.sandboxes.get(record.sandbox_id)
        self._sandboxes.namespaces(sandbox)
        if s.task(record.id) is not None or record.start_error:
            raise FailedPrecondition(f"container {record.id} was already started")
        config = record.container_config()
        with in_namespace(s.namespace):
            try:
                await s.tasks.create(record.id, terminal=config.tty, stdin=config.stdin,
                                     keep_stdin_open=config.stdin and not config.stdin_once,
                                     log_path=record.log_path or None)
                try:
                    await s.tasks.start(record.id)
                except BaseException:
                    await s.tasks.delete(record.id, force=True)
                    raise
            except RuntimeError_ as e:
                record.start_error, record.start_failed_at = e.message, now_ns()
                await self._save(record)
                raise

    async def _save(self, record: ContainerRecord) -> None:
        s = self._s
        with in_namespace(s.namespace):
            c = await s.containers.store.get(record.id)
            await s.containers.store.set_labels(record.id, {**c.labels, **container_labels(record)})

    async def stop(self, container_id: str, timeout: int) -> None:
        s = self._s
        record = s.cri_containers.get(container_id)
        t = s.task(record.id)
        if t is None or t.status == Status.STOPPED:
            return
        with in_namespace(s.namespace):
            if t.status == Status.CREATED:
                await s.tasks.delete(record.id, force=True)
                return
            if timeout > 0:
                config = record.container_config()
                if config.stop_signal != cri.RUNTIME_DEFAULT:
                    sig = _signal({"config": {"StopSignal": cri.Signal.Name(config.stop_signal)}})
                else:
                    found = await s.catalog.lookup(record.image_id)
                    sig = _signal(found[0].config) if found else int(signal.SIGTERM)
                try:
                    await s.tasks.kill(record.id, sig)
                    await asyncio.wait_for(s.tasks.wait(record.id), timeout)
                    return
                except (asyncio.TimeoutError, FailedPrecondition):
                    pass
            try:
                await s.tasks.kill(record.id, signal.SIGKILL, all=True)
            except FailedPrecondition:
                return
            await s.tasks.wait(record.id)

    async def remove(self, container_id: str) -> None:
        s = self._s
        record = s.cri_containers.find(container_id)
        if record is None:
            return
        await self.stop(record.id, 0)
        await s.delete_runtime_container(record.id)
        s.cri_containers.remove(record.id)

    async def update_resources(self, container_id: str, resources: cri.LinuxContainerResources) -> None:
        s = self._s
        record = s.cri_containers.get(container_id)
        opts = ResourceOptions(**resource_options(resources))
        with in_namespace(s.namespace):
            await s.containers.update_resources(record.id, opts)
            t = s.task(record.id)
            if t is not None and t.status in (Status.RUNNING, Status.PAUSED):
                await s.tasks.update(record.id, opts)
        record.set_resources(resources)
        await self._save(record)

    async def reopen_log(self, container_id: str) -> None:
        s = self._s
        record = s.cri_containers.get(container_id)
        t = s.task(record.id)
        if t is None or t.status != Status.RUNNING:
            raise FailedPrecondition(f"container {record.id} is not running")
        with in_namespace(s.namespace):
            ctl = s.tasks.io(record.id).ctl

        def write() -> None:
            fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.write(fd, _CTL_REOPEN_LOG.encode())
            finally:
                os.close(fd)

        await asyncio.to_thread(write)

    def state_of(self, record: ContainerRecord) -> cri.ContainerState.ValueType:
        t = self._s.task(record.id)
        if t is None and record.start_error:
            return cri.CONTAINER_EXITED
        if t is None or t.status == Status.CREATED:
            return cri.CONTAINER_CREATED
        if t.status == Status.STOPPED:
            return cri.CONTAINER_EXITED
        return cri.CONTAINER_RUNNING
