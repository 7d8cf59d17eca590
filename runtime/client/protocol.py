"""The runtime API as the engine uses it: one Protocol that the real client and the in-memory fake both meet.

The engine's services are typed against this, not against the HTTP client, so their rules (create
plans, restart backoff, health actions, reconcile) run in unit tests against runtime/client/testing.py
in milliseconds; tests/integration/test_client_conformance.py runs one scenario against both to keep
the fake honest.
"""
from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from runtime.client.client import Client
from runtime.client.records import (
    Container,
    CreatedContainer,
    ContentInfo,
    CreatedExec,
    CreatedTask,
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


class RuntimeAPI(Protocol):
    namespace: str

    async def close(self) -> None: ...

    # system
    async def version(self) -> Version: ...

    async def sysinfo(self) -> HostFeatures: ...

    async def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]: ...

    def events(self, topics: list[str] | None = None, namespaces: list[str] | None = None,
               announce: bool = False, since: float | None = None) -> AsyncIterator[dict[str, Any]]: ...

    # images and content
    async def images(self, namespace: str | None = None) -> list[Image]: ...

    async def image(self, name: str, namespace: str | None = None) -> Image: ...

    async def put_image(self, name: str, target: dict[str, Any], labels: dict[str, str] | None = None,
                        namespace: str | None = None) -> Image: ...

    async def remove_image(self, name: str, namespace: str | None = None) -> None: ...

    def pull(self, ref: str, *, plain_http: bool = False, snapshotter: str | None = None, unpack: bool = True,
             platform: str | None = None, mirrors: dict[str, list[str]] | None = None,
             insecure: list[str] | None = None, credentials: dict[str, str] | None = None,
             namespace: str | None = None,
             max_concurrent_downloads: int | None = None) -> AsyncGenerator[dict[str, Any], None]: ...

    async def describe_remote(self, ref: str, *, plain_http: bool = False,
                              mirrors: dict[str, list[str]] | None = None, insecure: list[str] | None = None,
                              credentials: dict[str, str] | None = None,
                              namespace: str | None = None) -> RemoteDescription: ...

    async def remote_tags(self, ref: str, *, mirrors: dict[str, list[str]] | None = None,
                          insecure: list[str] | None = None, credentials: dict[str, str] | None = None,
                          namespace: str | None = None) -> list[str]: ...

    async def search(self, term: str, limit: int = 25, *, insecure: list[str] | None = None,
                     credentials: dict[str, str] | None = None, namespace: str | None = None) -> SearchResults: ...

    async def content(self, namespace: str | None = None) -> list[ContentInfo]: ...

    async def read_content(self, digest: str, namespace: str | None = None) -> bytes: ...

    async def snapshotters(self) -> list[str]: ...

    async def snapshot_usage(self, snapshotter: str, key: str, namespace: str | None = None) -> Usage: ...

    async def snapshot_usages(self, snapshotter: str, keys: list[str], namespace: str | None = None
                              ) -> dict[str, Usage]: ...

    async def snapshot(self, snapshotter: str, key: str, namespace: str | None = None) -> SnapshotInfo: ...

    async def snapshot_mounts(self, snapshotter: str, key: str, namespace: str | None = None) -> list[Mount]: ...

    # containers
    async def containers(self, namespace: str | None = None) -> list[Container]: ...

    async def container(self, container_id: str, namespace: str | None = None) -> Container: ...

    async def create_container(self, container_id: str, image: str, options: dict[str, Any] | None = None, *,
                               snapshotter: str | None = None, runtime: str = "runc", init: bool = False,
                               labels: dict[str, str] | None = None, namespace: str | None = None) -> CreatedContainer: ...

    async def set_container_resources(self, container_id: str, resources: dict[str, Any],
                                      namespace: str | None = None) -> Container: ...

    async def remove_container(self, container_id: str, keep_snapshot: bool = False,
                               namespace: str | None = None) -> None: ...

    # tasks
    async def tasks(self, namespace: str | None = None) -> list[Task]: ...

    async def task(self, task_id: str, namespace: str | None = None) -> Task: ...

    async def create_task(self, container_id: str, *, terminal: bool | None = None, stdin: bool = False,
                          keep_stdin_open: bool = False, env: list[str] | None = None,
                          runtime_binary: str | None = None, runtime_args: list[str] | None = None,
                          namespace: str | None = None) -> CreatedTask: ...

    async def start_task(self, task_id: str, namespace: str | None = None) -> Task: ...

    async def kill_task(self, task_id: str, signal: str | int = "SIGTERM", all: bool = False,
                        exec_id: str | None = None, namespace: str | None = None) -> None: ...

    async def wait_task(self, task_id: str, exec_id: str | None = None,
                        namespace: str | None = None) -> ExitStatus: ...

    async def delete_task(self, task_id: str, force: bool = False, namespace: str | None = None) -> ExitStatus: ...

    async def pause_task(self, task_id: str, namespace: str | None = None) -> None: ...

    async def resume_task(self, task_id: str, namespace: str | None = None) -> None: ...

    async def update_task(self, task_id: str, resources: dict[str, Any], namespace: str | None = None) -> None: ...

    async def task_pids(self, task_id: str, namespace: str | None = None) -> list[int]: ...

    async def task_metrics(self, task_id: str, namespace: str | None = None) -> Metrics: ...

    async def task_io(self, task_id: str, exec_id: str | None = None,
                      namespace: str | None = None) -> ProcessIO: ...

    async def resize_task(self, task_id: str, rows: int, cols: int, exec_id: str | None = None,
                          namespace: str | None = None) -> None: ...

    async def add_exec(self, task_id: str, exec_id: str, args: list[str], *, env: list[str] | None = None,
                       cwd: str | None = None, user: str | None = None, terminal: bool = False,
                       stdin: bool = False, privileged: bool = False, inherit_env: bool = True,
                       additional_gids: list[str | int] | None = None, console_size: tuple[int, int] | None = None,
                       namespace: str | None = None) -> CreatedExec: ...

    async def start_exec(self, task_id: str, exec_id: str, namespace: str | None = None) -> Exec: ...

    async def delete_exec(self, task_id: str, exec_id: str, namespace: str | None = None) -> None: ...

    # container filesystems
    async def stat_path(self, container_id: str, path: str, namespace: str | None = None) -> dict[str, Any]: ...

    def archive(self, container_id: str, path: str, namespace: str | None = None
                ) -> AbstractAsyncContextManager[tuple[dict[str, Any], AsyncIterator[bytes]]]: ...

    def export(self, container_id: str, namespace: str | None = None
               ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    async def put_archive(self, container_id: str, path: str, data: AsyncIterable[bytes], *,
                          no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False,
                          namespace: str | None = None) -> None: ...

    async def container_changes(self, container_id: str, namespace: str | None = None) -> list[dict[str, Any]]: ...


class LeaseAPI(Protocol):
    """Leases: what keeps content written ahead of the image that will name it from the runtime's GC."""

    async def leases(self, namespace: str | None = None) -> list[dict[str, Any]]: ...

    async def create_lease(self, id: str | None = None, expire_after: float | None = None,
                           namespace: str | None = None) -> dict[str, Any]: ...

    async def remove_lease(self, id: str, namespace: str | None = None) -> None: ...


def _conforms(client: Client) -> RuntimeAPI:
    """Type-checked (mypy --strict covers runtime/client): the HTTP client meets the Protocol."""
    return client


def _leases(client: Client) -> LeaseAPI:
    return client
