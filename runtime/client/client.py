"""Python client of the pyruntimed API: what the engine and pyctr use.

Every method raises the runtime's typed errors (runtime.errors), mapped back
from the API's error bodies, and Unavailable when the daemon cannot be reached.
"""
from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator
from urllib.parse import quote

from runtime.client.archives import ArchiveClient
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
from runtime.client.blobs import BlobClient
from runtime.client.diff import DiffClient
from runtime.client.ingest import IngestClient
from runtime.client.path_info import PathInfoClient
from runtime.client.push import PushClient
from runtime.client.transport import DEFAULT_ADDRESS, Transport
from runtime.wire import PATH_STAT_HEADER

__all__ = ["DEFAULT_ADDRESS", "Client"]


class Client(IngestClient, DiffClient, PushClient, ArchiveClient, PathInfoClient, BlobClient,
             Transport):
    # system
    async def version(self) -> Version:
        return await self._record(Version, "GET", "/version")

    async def plugins(self) -> list[dict[str, Any]]:
        return await self._objects("GET", "/plugins")

    async def sysinfo(self) -> HostFeatures:
        """What the host's kernel supports (cgroup controllers and files, seccomp, apparmor)."""
        return await self._record(HostFeatures, "GET", "/sysinfo")

    async def gc(self) -> dict[str, Any]:
        return await self._object("POST", "/gc")

    # namespaces
    async def namespaces(self) -> list[dict[str, Any]]:
        return await self._objects("GET", "/namespaces")

    async def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        return await self._object("POST", "/namespaces", json_body={"name": name, "labels": labels or {}})

    async def set_namespace_labels(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        return await self._object("PUT", f"/namespaces/{quote(name, safe='')}/labels", json_body={"labels": labels})

    async def remove_namespace(self, name: str) -> None:
        await self.request("DELETE", f"/namespaces/{quote(name, safe='')}")

    # images
    async def images(self, namespace: str | None = None) -> list[Image]:
        return await self._records(Image, "GET", "/images", namespace=namespace)

    async def image(self, name: str, namespace: str | None = None) -> Image:
        return await self._record(Image, "GET", f"/images/{quote(name, safe='/:@')}", namespace=namespace)

    async def image_config(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The image's config blob for this platform: what runtime.client.imageconfig builds a process from."""
        return await self._object("GET", f"/images/{quote(name, safe='/:@')}/config", namespace=namespace)

    async def put_image(self, name: str, target: dict[str, Any], labels: dict[str, str] | None = None,
                        namespace: str | None = None) -> Image:
        return await self._record(Image, "POST", "/images", json_body={"name": name, "target": target,
                                                                "labels": labels or {}}, namespace=namespace)

    async def remove_image(self, name: str, namespace: str | None = None) -> None:
        await self.request("DELETE", f"/images/{quote(name, safe='/:@')}", namespace=namespace)

    def pull(self, ref: str, *, plain_http: bool = False, snapshotter: str | None = None, unpack: bool = True,
             platform: str | None = None, mirrors: dict[str, list[str]] | None = None,
             insecure: list[str] | None = None, credentials: dict[str, str] | None = None,
             namespace: str | None = None,
             max_concurrent_downloads: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        body = {
            "ref": ref,
            "plain_http": plain_http,
            "options": {"snapshotter": snapshotter, "unpack": unpack, "platform": platform,
                        "max_concurrent_downloads": max_concurrent_downloads},
            "hosts": {"mirrors": mirrors or {}, "insecure": insecure or []},
            "credentials": credentials,
        }
        return self.stream("POST", "/images/pull", json_body=body, namespace=namespace)

    async def describe_remote(self, ref: str, *, plain_http: bool = False,
                              mirrors: dict[str, list[str]] | None = None, insecure: list[str] | None = None,
                              credentials: dict[str, str] | None = None,
                              namespace: str | None = None) -> RemoteDescription:
        body = {"ref": ref, "plain_http": plain_http, "hosts": {"mirrors": mirrors or {}, "insecure": insecure or []},
                "credentials": credentials}
        return await self._record(RemoteDescription, "POST", "/images/describe", json_body=body, namespace=namespace)

    async def remote_tags(self, ref: str, *, mirrors: dict[str, list[str]] | None = None,
                          insecure: list[str] | None = None, credentials: dict[str, str] | None = None,
                          namespace: str | None = None) -> list[str]:
        """Every tag of the repository `ref` names, as its registry lists them."""
        body = {"ref": ref, "hosts": {"mirrors": mirrors or {}, "insecure": insecure or []}, "credentials": credentials}
        found = await self._object("POST", "/images/tags", json_body=body, namespace=namespace)
        return [str(tag) for tag in found.get("tags") or []]

    async def search(self, term: str, limit: int = 25, *, insecure: list[str] | None = None,
                     credentials: dict[str, str] | None = None, namespace: str | None = None) -> SearchResults:
        body = {"term": term, "limit": limit, "hosts": {"insecure": insecure or []}, "credentials": credentials}
        return await self._record(SearchResults, "POST", "/images/search", json_body=body, namespace=namespace)

    # content
    async def content(self, namespace: str | None = None) -> list[ContentInfo]:
        return await self._records(ContentInfo, "GET", "/content", namespace=namespace)

    async def content_info(self, digest: str, namespace: str | None = None) -> ContentInfo:
        return await self._record(ContentInfo, "GET", f"/content/{digest}", namespace=namespace)

    async def read_content(self, digest: str, namespace: str | None = None) -> bytes:
        return await self._blob("GET", f"/content/{digest}/blob", namespace=namespace)

    async def remove_content(self, digest: str, namespace: str | None = None) -> None:
        await self.request("DELETE", f"/content/{digest}", namespace=namespace)

    async def ingests(self) -> list[dict[str, Any]]:
        return await self._objects("GET", "/content/ingests")

    # snapshots
    async def snapshotters(self) -> list[str]:
        """The snapshotters the runtime loaded."""
        body = await self.request("GET", "/snapshots")
        return [str(name) for name in body] if isinstance(body, list) else []

    async def snapshots(self, snapshotter: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return await self._objects("GET", f"/snapshots/{snapshotter}", namespace=namespace)

    async def prepare_snapshot(self, snapshotter: str, key: str, parent: str | None = None,
                               labels: dict[str, str] | None = None, namespace: str | None = None,
                               lease: str | None = None) -> list[dict[str, Any]]:
        return await self._objects("POST", f"/snapshots/{snapshotter}/prepare",
                                   json_body={"key": key, "parent": parent, "labels": labels or {}},
                                   namespace=namespace, lease=lease)

    async def view_snapshot(self, snapshotter: str, key: str, parent: str, labels: dict[str, str] | None = None,
                            namespace: str | None = None, lease: str | None = None) -> list[dict[str, Any]]:
        return await self._objects("POST", f"/snapshots/{snapshotter}/view",
                                   json_body={"key": key, "parent": parent, "labels": labels or {}},
                                   namespace=namespace, lease=lease)

    async def commit_snapshot(self, snapshotter: str, name: str, key: str, namespace: str | None = None) -> None:
        await self.request("POST", f"/snapshots/{snapshotter}/commit", json_body={"name": name, "key": key},
                           namespace=namespace)

    async def snapshot(self, snapshotter: str, key: str, namespace: str | None = None) -> SnapshotInfo:
        return await self._record(SnapshotInfo, "GET", f"/snapshots/{snapshotter}/{quote(key, safe='')}",
                                  namespace=namespace)

    async def snapshot_mounts(self, snapshotter: str, key: str, namespace: str | None = None) -> list[Mount]:
        return await self._records(Mount, "GET", f"/snapshots/{snapshotter}/{quote(key, safe='')}/mounts",
                                   namespace=namespace)

    async def snapshot_usage(self, snapshotter: str, key: str, namespace: str | None = None) -> Usage:
        return await self._record(Usage, "GET", f"/snapshots/{snapshotter}/{quote(key, safe='')}/usage",
                                  namespace=namespace)

    async def snapshot_usages(self, snapshotter: str, keys: list[str], namespace: str | None = None
                              ) -> dict[str, Usage]:
        found = await self._object("POST", f"/snapshots/{snapshotter}/usage", json_body={"keys": keys},
                                   namespace=namespace)
        return {key: Usage.model_validate(usage) for key, usage in found.items()}

    async def remove_snapshot(self, snapshotter: str, key: str, namespace: str | None = None) -> None:
        await self.request("DELETE", f"/snapshots/{snapshotter}/{quote(key, safe='')}", namespace=namespace)

    # leases
    async def leases(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return await self._objects("GET", "/leases", namespace=namespace)

    async def create_lease(self, id: str | None = None, expire_after: float | None = None,
                           namespace: str | None = None) -> dict[str, Any]:
        return await self._object("POST", "/leases", json_body={"id": id, "expire_after": expire_after},
                                  namespace=namespace)

    async def remove_lease(self, id: str, namespace: str | None = None) -> None:
        await self.request("DELETE", f"/leases/{quote(id, safe='')}", namespace=namespace)

    # containers
    async def containers(self, namespace: str | None = None) -> list[Container]:
        return await self._records(Container, "GET", "/containers", namespace=namespace)

    async def container(self, container_id: str, namespace: str | None = None) -> Container:
        return await self._record(Container, "GET", f"/containers/{quote(container_id, safe='')}", namespace=namespace)

    async def create_container(self, container_id: str, image: str, options: dict[str, Any] | None = None, *,
                               snapshotter: str | None = None, runtime: str = "runc", init: bool = False,
                               labels: dict[str, str] | None = None, namespace: str | None = None) -> CreatedContainer:
        body = {"id": container_id, "image": image, "snapshotter": snapshotter, "runtime": runtime,
                "labels": labels or {}, "options": options or {}, "init": init}
        return await self._record(CreatedContainer, "POST", "/containers", json_body=body, namespace=namespace)

    async def set_container_resources(self, container_id: str, resources: dict[str, Any],
                                      namespace: str | None = None) -> Container:
        """The cgroup limits (SpecOptions' resource fields) the container's next task gets."""
        return await self._record(Container, "PUT", f"/containers/{quote(container_id, safe='')}/resources",
                                  json_body={"resources": resources}, namespace=namespace)

    async def remove_container(self, container_id: str, keep_snapshot: bool = False,
                               namespace: str | None = None) -> None:
        await self.request("DELETE", f"/containers/{quote(container_id, safe='')}",
                           params={"keep_snapshot": "true"} if keep_snapshot else None, namespace=namespace)

    # tasks
    async def tasks(self, namespace: str | None = None) -> list[Task]:
        return await self._records(Task, "GET", "/tasks", namespace=namespace)

    async def task(self, task_id: str, namespace: str | None = None) -> Task:
        return await self._record(Task, "GET", f"/tasks/{quote(task_id, safe='')}", namespace=namespace)

    async def create_task(self, container_id: str, *, terminal: bool | None = None, stdin: bool = False,
                          keep_stdin_open: bool = False, env: list[str] | None = None,
                          runtime_binary: str | None = None, runtime_args: list[str] | None = None,
                          namespace: str | None = None) -> CreatedTask:
        """`env`: KEY=VALUE for this run only; the container's own variables win over them. `runtime_binary`: a
        runc-compatible binary (a path, or a name looked up in PATH) this task runs with in place of its
        container's runtime's own, with `runtime_args` before each of its commands."""
        body = {"container_id": container_id, "terminal": terminal, "stdin": stdin, "keep_stdin_open": keep_stdin_open,
                "env": env or [], "runtime_binary": runtime_binary, "runtime_args": runtime_args or []}
        return await self._record(CreatedTask, "POST", "/tasks", json_body=body, namespace=namespace)

    async def start_task(self, task_id: str, namespace: str | None = None) -> Task:
        return await self._record(Task, "POST", f"/tasks/{quote(task_id, safe='')}/start", namespace=namespace)

    async def kill_task(self, task_id: str, signal: str | int = "SIGTERM", all: bool = False,
                        exec_id: str | None = None, namespace: str | None = None) -> None:
        await self.request("POST", f"/tasks/{quote(task_id, safe='')}/kill",
                           json_body={"signal": signal, "all": all, "exec_id": exec_id}, namespace=namespace)

    async def wait_task(self, task_id: str, exec_id: str | None = None,
                        namespace: str | None = None) -> ExitStatus:
        return await self._record(ExitStatus, "POST", f"/tasks/{quote(task_id, safe='')}/wait",
                                  params={"exec_id": exec_id} if exec_id else None, namespace=namespace)

    async def delete_task(self, task_id: str, force: bool = False, namespace: str | None = None) -> ExitStatus:
        return await self._record(ExitStatus, "DELETE", f"/tasks/{quote(task_id, safe='')}",
                                  params={"force": "true"} if force else None, namespace=namespace)

    async def pause_task(self, task_id: str, namespace: str | None = None) -> None:
        await self.request("POST", f"/tasks/{quote(task_id, safe='')}/pause", namespace=namespace)

    async def resume_task(self, task_id: str, namespace: str | None = None) -> None:
        await self.request("POST", f"/tasks/{quote(task_id, safe='')}/resume", namespace=namespace)

    async def update_task(self, task_id: str, resources: dict[str, Any], namespace: str | None = None) -> None:
        """New cgroup limits for a live task (SpecOptions' resource fields)."""
        await self.request("POST", f"/tasks/{quote(task_id, safe='')}/update", json_body={"resources": resources},
                           namespace=namespace)

    async def task_pids(self, task_id: str, namespace: str | None = None) -> list[int]:
        return await self._ints("GET", f"/tasks/{quote(task_id, safe='')}/pids", namespace=namespace)

    async def task_metrics(self, task_id: str, namespace: str | None = None) -> Metrics:
        return await self._record(Metrics, "GET", f"/tasks/{quote(task_id, safe='')}/metrics", namespace=namespace)

    async def task_io(self, task_id: str, exec_id: str | None = None,
                      namespace: str | None = None) -> ProcessIO:
        return await self._record(ProcessIO, "GET", f"/tasks/{quote(task_id, safe='')}/io",
                                  params={"exec_id": exec_id} if exec_id else None, namespace=namespace)

    async def resize_task(self, task_id: str, rows: int, cols: int, exec_id: str | None = None,
                          namespace: str | None = None) -> None:
        await self.request("POST", f"/tasks/{quote(task_id, safe='')}/resize",
                           json_body={"rows": rows, "cols": cols, "exec_id": exec_id}, namespace=namespace)

    async def add_exec(self, task_id: str, exec_id: str, args: list[str], *, env: list[str] | None = None,
                       cwd: str | None = None, user: str | None = None, terminal: bool = False, stdin: bool = False,
                       privileged: bool = False, inherit_env: bool = True,
                       additional_gids: list[str | int] | None = None, console_size: tuple[int, int] | None = None,
                       namespace: str | None = None) -> CreatedExec:
        """`console_size`: (height, width) of a terminal exec's terminal from its start."""
        body = {"exec_id": exec_id, "args": args, "env": env or [], "cwd": cwd, "user": user,
                "terminal": terminal, "stdin": stdin, "privileged": privileged, "inherit_env": inherit_env,
                "additional_gids": additional_gids or [], "console_size": list(console_size) if console_size else None}
        return await self._record(CreatedExec, "POST", f"/tasks/{quote(task_id, safe='')}/execs", json_body=body,
                                  namespace=namespace)

    async def start_exec(self, task_id: str, exec_id: str, namespace: str | None = None) -> Exec:
        return await self._record(Exec, "POST", f"/tasks/{quote(task_id, safe='')}/execs/{quote(exec_id, safe='')}/start",
                                  namespace=namespace)

    async def delete_exec(self, task_id: str, exec_id: str, namespace: str | None = None) -> None:
        await self.request("DELETE", f"/tasks/{quote(task_id, safe='')}/execs/{quote(exec_id, safe='')}",
                           namespace=namespace)

    # container filesystems
    async def stat_path(self, container_id: str, path: str, namespace: str | None = None) -> dict[str, Any]:
        """Docker's path stat ({"name", "size", "mode" (Go FileMode bits), "mtime", "linkTarget"})."""
        return await self._object("GET", f"/containers/{quote(container_id, safe='')}/archive/stat",
                                  params={"path": path}, namespace=namespace)

    @asynccontextmanager
    async def archive(self, container_id: str, path: str,
                      namespace: str | None = None) -> AsyncIterator[tuple[dict[str, Any], AsyncIterator[bytes]]]:
        """(the path's stat, the bytes of a tar of it), for the duration of the block."""
        async with self._download(f"/containers/{quote(container_id, safe='')}/archive", {"path": path},
                                  namespace) as (resp, body):
            yield json.loads(base64.b64decode(resp.headers.get(PATH_STAT_HEADER.lower(), "")) or b"{}"), body

    @asynccontextmanager
    async def export(self, container_id: str, namespace: str | None = None) -> AsyncIterator[AsyncIterator[bytes]]:
        """The bytes of a tar of the container's whole rootfs, for the duration of the block."""
        async with self._download(f"/containers/{quote(container_id, safe='')}/export", None,
                                  namespace) as (_, body):
            yield body

    async def put_archive(self, container_id: str, path: str, data: AsyncIterable[bytes], *,
                          no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False,
                          namespace: str | None = None) -> None:
        """Unpack the tar streamed from `data` into directory `path` of the container."""
        params = {"path": path, "no_overwrite_dir_non_dir": str(no_overwrite_dir_non_dir).lower(),
                  "copy_uid_gid": str(copy_uid_gid).lower()}
        resp = await self._send("PUT", f"/containers/{quote(container_id, safe='')}/archive", None, params,
                                namespace, None, raw=data)
        if resp.status >= 400:
            await self._raise(resp)
        await resp.read()

    async def container_changes(self, container_id: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """[{"path", "kind"}], kind 0 modified, 1 added, 2 deleted (Docker's)."""
        return await self._objects("GET", f"/containers/{quote(container_id, safe='')}/changes", namespace=namespace)

    # events
    async def events(self, topics: list[str] | None = None, namespaces: list[str] | None = None,
                     announce: bool = False, since: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Live events, after the recorded ones from `since` (Unix seconds) on; with announce, the first item is
        {"status": "subscribed"} once the stream is live."""
        params = [("topic", t) for t in topics or []] + [("namespace", n) for n in namespaces or []]
        if since is not None:
            params.append(("since", repr(since)))
        async for line in self.stream("GET", "/events", params=params):
            if announce or line.get("status") != "subscribed":
                yield line
