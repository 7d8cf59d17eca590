"""An in-memory runtime for unit tests of the engine: RuntimeAPI with no daemon, no runc, no conmon.

It keeps what the engine relies on (verified against the real daemon by
tests/integration/test_client_conformance.py): a task is created, then started; a stopped
task waits to be deleted and keeps its exit status; deleting a running task needs force,
which kills it; exits are published as /tasks/exit events in the task's namespace; unknown
ids are NotFound, duplicates AlreadyExists, transitions out of order FailedPrecondition.
Processes are simulated: a test ends one with `exit()`, and a kill ends it with 128 + signal.
Images are whatever a test adds with `add_image()`: a config and nothing to unpack.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from runtime.client.protocol import RuntimeAPI
from runtime.client.records import (
    Container,
    CreatedContainer,
    ContentInfo,
    CreatedExec,
    CreatedTask,
    Descriptor,
    Exec,
    ExitStatus,
    HostFeatures,
    Image,
    Metrics,
    Mount,
    ProcessIO,
    RemoteDescription,
    SearchResults,
    SnapshotInfo,
    Task,
    Usage,
    Version,
)
from runtime.client.signals import parse_signal
from runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

_TASK_EXIT = "/tasks/exit"


class _Process:
    def __init__(self, pid: int, terminal: bool, stdin: bool) -> None:
        self.pid = pid
        self.terminal = terminal
        self.stdin = stdin
        self.status = "created"
        self.created_at = time.time()
        self.started_at: float | None = None
        self.exit_status: int | None = None
        self.exited_at: float | None = None
        self.exited = asyncio.Event()

    def fields(self) -> dict[str, Any]:
        return {"pid": self.pid, "status": self.status, "terminal": self.terminal, "stdin": self.stdin,
                "exit_status": self.exit_status, "created_at": self.created_at, "started_at": self.started_at,
                "exited_at": self.exited_at}


class _Task(_Process):
    def __init__(self, pid: int, terminal: bool, stdin: bool, keep_stdin_open: bool, env: list[str]) -> None:
        super().__init__(pid, terminal, stdin)
        self.keep_stdin_open = keep_stdin_open
        self.env = env  # the run's own variables, as create_task was given them
        self.execs: dict[str, _Process] = {}


class FakeRuntime:
    def __init__(self, namespace: str = "default", features: HostFeatures | None = None) -> None:
        self.namespace = namespace
        self.features = features or HostFeatures(cgroup_version="2", memory_limit=True, swap_limit=True,
                                                 memory_reservation=True, cpu_shares=True, cpu_cfs=True,
                                                 cpuset=True, pids_limit=True, blkio_weight=True, seccomp=True)
        self.calls: list[str] = []  # method names, in order: what a test counts round trips with
        self._pids = itertools.count(1000)
        self._images: dict[str, Image] = {}
        self._blobs: dict[str, bytes] = {}
        self._containers: dict[str, Container] = {}
        self._tasks: dict[str, _Task] = {}
        self._subscribers: list[asyncio.Queue[dict[str, Any]]] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)

    # test helpers ----------------------------------------------------------

    def add_image(self, name: str, config: dict[str, Any]) -> Image:
        """An image `name` whose config is `config` (Docker's image config, with its "config" object)."""
        config_blob = json.dumps(config).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": self._store(config_blob), "size": len(config_blob)},
                               "layers": []}).encode()
        image = Image(name=name, target=Descriptor(mediaType="application/vnd.oci.image.manifest.v1+json",
                                                   digest=self._store(manifest), size=len(manifest)))
        self._images[name] = image
        return image

    def exit(self, task_id: str, code: int, exec_id: str | None = None) -> None:
        """The process ends by itself with `code`, as if conmon had written its exit file."""
        task = self._get_task(task_id)
        process = task.execs[exec_id] if exec_id else task
        if process.status not in ("running", "paused"):
            raise FailedPrecondition(f"{exec_id or task_id} is not running")
        self._stopped(task_id, process, code, exec_id)

    def _store(self, blob: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        self._blobs[digest] = blob
        return digest

    def _stopped(self, task_id: str, process: _Process, code: int, exec_id: str | None) -> None:
        process.status, process.exit_status, process.exited_at = "stopped", code, time.time()
        process.exited.set()
        event = {"container_id": task_id, "id": exec_id or task_id, "pid": process.pid, "exit_status": code,
                 "exited_at": process.exited_at, "oom_killed": False}
        for queue in self._subscribers:
            queue.put_nowait({"topic": _TASK_EXIT, "namespace": self.namespace, "timestamp": time.time(),
                              "event": event})

    def _get_task(self, task_id: str) -> _Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task

    def _process(self, task_id: str, exec_id: str | None) -> _Process:
        task = self._get_task(task_id)
        if exec_id is None:
            return task
        if exec_id not in task.execs:
            raise NotFound(f"exec {exec_id} of task {task_id} not found")
        return task.execs[exec_id]

    def _task_record(self, task_id: str) -> dict[str, Any]:
        task = self._get_task(task_id)
        return {"id": task_id, "namespace": self.namespace, "runtime": "io.pyengine.runtime.v1.fake",
                **task.fields(), "keep_stdin_open": task.keep_stdin_open,
                "execs": {eid: {"id": eid, **p.fields()} for eid, p in task.execs.items()}}

    @staticmethod
    def _io(task_id: str, exec_id: str | None = None) -> ProcessIO:
        where = f"/nonexistent/fake-runtime/{task_id}/{exec_id or 'init'}"
        return ProcessIO(attach_socket=f"{where}/attach", ctl=f"{where}/ctl", log_path=f"{where}/log")

    # system ------------------------------------------------------------------

    async def close(self) -> None:
        for queue in self._subscribers:
            queue.put_nowait({})

    async def version(self) -> Version:
        self._call("version")
        return Version(version="fake", api="v1")

    async def sysinfo(self) -> HostFeatures:
        self._call("sysinfo")
        return self.features

    async def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        self._call("create_namespace")
        return {"name": name, "labels": labels or {}}

    async def events(self, topics: list[str] | None = None, namespaces: list[str] | None = None,
                     announce: bool = False, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            if announce:
                yield {"status": "subscribed"}
            while envelope := await queue.get():
                if topics and envelope["topic"] not in topics:
                    continue
                if namespaces and envelope["namespace"] not in namespaces:
                    continue
                yield envelope
        finally:
            self._subscribers.remove(queue)

    # images and content ----------------------------------------------------------

    async def images(self, namespace: str | None = None) -> list[Image]:
        self._call("images")
        return list(self._images.values())

    async def image(self, name: str, namespace: str | None = None) -> Image:
        self._call("image")
        if name not in self._images:
            raise NotFound(f"image {name} not found")
        return self._images[name]

    async def put_image(self, name: str, target: dict[str, Any], labels: dict[str, str] | None = None,
                        namespace: str | None = None) -> Image:
        self._call("put_image")
        if target.get("digest") not in self._blobs:
            raise NotFound(f"content {target.get('digest')} not found")
        self._images[name] = Image(name=name, target=Descriptor.model_validate(target), labels=labels or {})
        return self._images[name]

    async def remove_image(self, name: str, namespace: str | None = None) -> None:
        self._call("remove_image")
        if self._images.pop(name, None) is None:
            raise NotFound(f"image {name} not found")

    async def pull(self, ref: str, *, plain_http: bool = False, snapshotter: str | None = None,
                   unpack: bool = True, platform: str | None = None, mirrors: dict[str, list[str]] | None = None,
                   insecure: list[str] | None = None, credentials: dict[str, str] | None = None,
                   namespace: str | None = None,
                   max_concurrent_downloads: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        if ref not in self._images:
            raise NotFound(f"manifest {ref} not found at fake: manifest unknown")
        yield {"status": "resolved", "digest": self._images[ref].target.digest}
        yield {"status": "complete"}

    async def describe_remote(self, ref: str, *, plain_http: bool = False,
                              mirrors: dict[str, list[str]] | None = None, insecure: list[str] | None = None,
                              credentials: dict[str, str] | None = None,
                              namespace: str | None = None) -> RemoteDescription:
        """The fake's registry is its own images: a manifest's platform is its config's."""
        self._call("describe_remote")
        if ref not in self._images:
            raise NotFound(f"manifest {ref} not found at fake: manifest unknown")
        target = self._images[ref].target
        manifest = json.loads(self._blobs[target.digest])
        config = json.loads(self._blobs[manifest["config"]["digest"]])
        return RemoteDescription(descriptor=target, platforms=[{"architecture": config.get("architecture", ""),
                                                                "os": config.get("os", "")}])

    async def remote_tags(self, ref: str, *, mirrors: dict[str, list[str]] | None = None,
                          insecure: list[str] | None = None, credentials: dict[str, str] | None = None,
                          namespace: str | None = None) -> list[str]:
        self._call("remote_tags")
        raise NotFound(f"the tags of {ref} not found at fake: no registry")

    async def search(self, term: str, limit: int = 25, *, insecure: list[str] | None = None,
                     credentials: dict[str, str] | None = None, namespace: str | None = None) -> SearchResults:
        """The fake's index has no search API, as the registries tests run against."""
        self._call("search")
        raise NotFound("the search API (/v1/search) not found at fake: no search API")

    async def content(self, namespace: str | None = None) -> list[ContentInfo]:
        self._call("content")
        return [ContentInfo(digest=d, size=len(b)) for d, b in self._blobs.items()]

    async def read_content(self, digest: str, namespace: str | None = None) -> bytes:
        self._call("read_content")
        if digest not in self._blobs:
            raise NotFound(f"content {digest} not found")
        return self._blobs[digest]

    async def snapshotters(self) -> list[str]:
        self._call("snapshotters")
        return ["overlayfs"]

    async def snapshot_usage(self, snapshotter: str, key: str, namespace: str | None = None) -> Usage:
        self._call("snapshot_usage")
        if key not in self._containers:
            raise NotFound(f"snapshot {key} not found")
        return Usage()

    async def snapshot_usages(self, snapshotter: str, keys: list[str], namespace: str | None = None
                              ) -> dict[str, Usage]:
        self._call("snapshot_usages")
        return {key: Usage() for key in keys if key in self._containers}

    async def snapshot(self, snapshotter: str, key: str, namespace: str | None = None) -> SnapshotInfo:
        self._call("snapshot")
        if key not in self._containers:
            raise NotFound(f"snapshot {key} not found")
        return SnapshotInfo(name=key, key=key, kind="active", created=0.0, updated=0.0)

    async def snapshot_mounts(self, snapshotter: str, key: str, namespace: str | None = None) -> list[Mount]:
        self._call("snapshot_mounts")
        if key not in self._containers:
            raise NotFound(f"snapshot {key} not found")
        return self._rootfs(key)

    @staticmethod
    def _rootfs(key: str) -> list[Mount]:
        return [Mount(type="bind", source=f"/nonexistent/fake-runtime/snapshots/{key}", options=["rbind", "rw"])]

    # containers ------------------------------------------------------------------

    async def containers(self, namespace: str | None = None) -> list[Container]:
        self._call("containers")
        return list(self._containers.values())

    async def container(self, container_id: str, namespace: str | None = None) -> Container:
        self._call("container")
        if container_id not in self._containers:
            raise NotFound(f"container {container_id} not found")
        return self._containers[container_id]

    async def create_container(self, container_id: str, image: str, options: dict[str, Any] | None = None, *,
                               snapshotter: str | None = None, runtime: str = "runc", init: bool = False,
                               labels: dict[str, str] | None = None, namespace: str | None = None) -> CreatedContainer:
        self._call("create_container")
        if container_id in self._containers:
            raise AlreadyExists(f"container {container_id} already exists")
        if image not in self._images:
            raise NotFound(f"image {image} not found")
        args = (options or {}).get("args")
        if not args or not args[0]:
            raise InvalidArgument("no command specified")
        spec = {"process": {"args": list(args), "env": list((options or {}).get("env") or [])}}
        record = self._containers[container_id] = Container(
            id=container_id, image=image, snapshotter=snapshotter or "fake", snapshot_key=container_id, runtime=runtime,
            spec=spec, labels=labels or {}, created=time.time())
        return CreatedContainer(**record.model_dump(), rootfs=self._rootfs(container_id))

    async def set_container_resources(self, container_id: str, resources: dict[str, Any],
                                      namespace: str | None = None) -> Container:
        self._call("set_container_resources")
        return await self.container(container_id)

    async def remove_container(self, container_id: str, keep_snapshot: bool = False,
                               namespace: str | None = None) -> None:
        self._call("remove_container")
        if container_id not in self._containers:
            raise NotFound(f"container {container_id} not found")
        if container_id in self._tasks:
            raise FailedPrecondition(f"container {container_id} has a task: delete it first")
        del self._containers[container_id]

    # tasks -------------------------------------------------------------------------

    async def tasks(self, namespace: str | None = None) -> list[Task]:
        self._call("tasks")
        return [Task.model_validate(self._task_record(tid)) for tid in self._tasks]

    async def task(self, task_id: str, namespace: str | None = None) -> Task:
        self._call("task")
        return Task.model_validate(self._task_record(task_id))

    async def create_task(self, container_id: str, *, terminal: bool | None = None, stdin: bool = False,
                          keep_stdin_open: bool = False, env: list[str] | None = None,
                          runtime_binary: str | None = None, runtime_args: list[str] | None = None,
                          namespace: str | None = None) -> CreatedTask:
        self._call("create_task")
        if runtime_args and not runtime_binary:
            raise InvalidArgument("runtime_args need runtime_binary")
        if keep_stdin_open and not stdin:
            raise InvalidArgument("keep_stdin_open needs stdin")
        if container_id not in self._containers:
            raise NotFound(f"container {container_id} not found")
        if container_id in self._tasks:
            raise AlreadyExists(f"task {container_id} already exists")
        self._tasks[container_id] = _Task(next(self._pids), bool(terminal), stdin, keep_stdin_open, list(env or []))
        return CreatedTask.model_validate({**self._task_record(container_id), "io": self._io(container_id)})

    async def start_task(self, task_id: str, namespace: str | None = None) -> Task:
        self._call("start_task")
        task = self._get_task(task_id)
        if task.status != "created":
            raise FailedPrecondition(f"cannot start {task_id}: it is {task.status}")
        task.status, task.started_at = "running", time.time()
        return Task.model_validate(self._task_record(task_id))

    async def kill_task(self, task_id: str, signal: str | int = "SIGTERM", all: bool = False,
                        exec_id: str | None = None, namespace: str | None = None) -> None:
        self._call("kill_task")
        number = parse_signal(signal)
        process = self._process(task_id, exec_id)
        if process.status not in ("running", "paused"):
            raise FailedPrecondition(f"{exec_id or task_id} is not running")
        self._stopped(task_id, process, 128 + number, exec_id)

    async def wait_task(self, task_id: str, exec_id: str | None = None,
                        namespace: str | None = None) -> ExitStatus:
        self._call("wait_task")
        process = self._process(task_id, exec_id)
        await process.exited.wait()
        return ExitStatus(exit_status=process.exit_status or 0, exited_at=process.exited_at or time.time())

    async def delete_task(self, task_id: str, force: bool = False, namespace: str | None = None) -> ExitStatus:
        self._call("delete_task")
        task = self._get_task(task_id)
        if task.status in ("running", "paused"):
            if not force:
                raise FailedPrecondition(f"task {task_id} is {task.status}: kill it first or force")
            self._stopped(task_id, task, 137, None)
        del self._tasks[task_id]
        return ExitStatus(exit_status=task.exit_status or 0, exited_at=task.exited_at or time.time())

    async def pause_task(self, task_id: str, namespace: str | None = None) -> None:
        self._call("pause_task")
        task = self._get_task(task_id)
        if task.status != "running":
            raise FailedPrecondition(f"cannot pause {task_id}: it is {task.status}")
        task.status = "paused"

    async def resume_task(self, task_id: str, namespace: str | None = None) -> None:
        self._call("resume_task")
        task = self._get_task(task_id)
        if task.status != "paused":
            raise FailedPrecondition(f"cannot resume {task_id}: it is {task.status}")
        task.status = "running"

    async def update_task(self, task_id: str, resources: dict[str, Any], namespace: str | None = None) -> None:
        self._call("update_task")
        self._get_task(task_id)

    async def task_pids(self, task_id: str, namespace: str | None = None) -> list[int]:
        self._call("task_pids")
        task = self._get_task(task_id)
        return [task.pid] + [p.pid for p in task.execs.values() if p.status == "running"]

    async def task_metrics(self, task_id: str, namespace: str | None = None) -> Metrics:
        self._call("task_metrics")
        self._get_task(task_id)
        return Metrics()

    async def task_io(self, task_id: str, exec_id: str | None = None,
                      namespace: str | None = None) -> ProcessIO:
        self._call("task_io")
        self._process(task_id, exec_id)
        return self._io(task_id, exec_id)

    async def resize_task(self, task_id: str, rows: int, cols: int, exec_id: str | None = None,
                          namespace: str | None = None) -> None:
        self._call("resize_task")
        if not self._process(task_id, exec_id).terminal:
            raise FailedPrecondition(f"{exec_id or task_id} has no terminal")

    async def add_exec(self, task_id: str, exec_id: str, args: list[str], *, env: list[str] | None = None,
                       cwd: str | None = None, user: str | None = None, terminal: bool = False,
                       stdin: bool = False, privileged: bool = False, inherit_env: bool = True,
                       additional_gids: list[str | int] | None = None, console_size: tuple[int, int] | None = None,
                       namespace: str | None = None) -> CreatedExec:
        self._call("add_exec")
        task = self._get_task(task_id)
        if task.status != "running":
            raise FailedPrecondition(f"task {task_id} is {task.status}")
        if exec_id in task.execs:
            raise AlreadyExists(f"exec {exec_id} already exists")
        process = task.execs[exec_id] = _Process(next(self._pids), terminal, stdin)
        return CreatedExec.model_validate({"id": exec_id, **process.fields(), "process": {"args": args},
                                           "io": self._io(task_id, exec_id)})

    async def start_exec(self, task_id: str, exec_id: str, namespace: str | None = None) -> Exec:
        self._call("start_exec")
        process = self._process(task_id, exec_id)
        if process.status != "created":
            raise FailedPrecondition(f"cannot start {exec_id}: it is {process.status}")
        process.status, process.started_at = "running", time.time()
        return Exec.model_validate({"id": exec_id, **process.fields()})

    async def delete_exec(self, task_id: str, exec_id: str, namespace: str | None = None) -> None:
        self._call("delete_exec")
        process = self._process(task_id, exec_id)
        if process.status == "running":
            raise FailedPrecondition(f"exec {exec_id} is running")
        del self._get_task(task_id).execs[exec_id]

    # container filesystems: nothing to read in memory -----------------------------------

    async def stat_path(self, container_id: str, path: str, namespace: str | None = None) -> dict[str, Any]:
        raise NotFound(f"the fake runtime has no files: {path}")

    def archive(self, container_id: str, path: str,
                namespace: str | None = None) -> AbstractAsyncContextManager[tuple[dict[str, Any],
                                                                                  AsyncIterator[bytes]]]:
        return _NoFiles(path)

    def export(self, container_id: str,
               namespace: str | None = None) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return _NoFiles("/")

    async def put_archive(self, container_id: str, path: str, data: AsyncIterable[bytes], *,
                          no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False,
                          namespace: str | None = None) -> None:
        raise NotFound(f"the fake runtime has no files: {path}")

    async def container_changes(self, container_id: str, namespace: str | None = None) -> list[dict[str, Any]]:
        await self.container(container_id)
        return []


class _NoFiles(AbstractAsyncContextManager[Any]):
    def __init__(self, path: str) -> None:
        self._path = path

    async def __aenter__(self) -> Any:
        raise NotFound(f"the fake runtime has no files: {self._path}")

    async def __aexit__(self, *exc: object) -> None:
        return None


def _conforms(fake: FakeRuntime) -> RuntimeAPI:
    """Type-checked (mypy --strict covers runtime/client): the fake meets the engine's Protocol."""
    return fake
