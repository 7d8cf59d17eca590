"""Shared helpers for integration tests: run pyctr, pull through the client, mount views."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pty
import select
import subprocess
import sys
import tempfile
import urllib.request
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import aiohttp

from runtime.client import Client
from runtime.mount import Mount, mount_all, unmount

BIN = Path(sys.executable).parent


def pyctr(env: dict[str, str], *args: str, timeout: float = 300,
          check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "pyctr"), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"pyctr {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


async def pull(client: Client, ref: str, **kw: Any) -> dict[str, Any]:
    last: dict[str, Any] = {}
    async for ev in client.pull(ref, **kw):
        last = ev
    assert last.get("status") == "complete", last
    return last["image"]


def chain_id(diff_ids: list[str]) -> str:
    chain = diff_ids[0]
    for d in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {d}".encode()).hexdigest()
    return chain


@contextmanager
def mounted_view(address: str, snapshotter: str, parent: str, namespace: str = "default") -> Iterator[Path]:
    """Mount a read-only view of `parent` for the duration of the block."""
    key = f"test-view-{os.urandom(4).hex()}"

    async def make() -> list[dict[str, Any]]:
        async with Client(address, namespace) as c:
            return await c.view_snapshot(snapshotter, key, parent)

    async def drop() -> None:
        async with Client(address, namespace) as c:
            await c.remove_snapshot(snapshotter, key)

    mounts = [Mount(**m) for m in asyncio.run(make())]
    target = tempfile.mkdtemp(prefix="pyengine-view-")
    mount_all(mounts, target)
    try:
        yield Path(target)
    finally:
        unmount(target)
        os.rmdir(target)
        asyncio.run(drop())


async def raw_request(address: str, method: str, path: str, *, data: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=address)) as s:
        async with s.request(method, "http://runtime" + path, data=data, headers=headers or {}) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


def blob_files(root: str) -> dict[str, Path]:
    d = Path(root) / "content" / "blobs" / "sha256"
    return {"sha256:" + p.name: p for p in d.iterdir() if not p.name.startswith(".")} if d.exists() else {}


def verify_blob(path: Path) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest() == "sha256:" + path.name


class PtyProcess:
    """A command on a pseudo-terminal, driven like a person at a keyboard."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(argv[0], argv, env)
        self.out = b""

    def read_until(self, token: bytes, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while token not in self.out and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    break
        assert token in self.out, self.out

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def fetch(url: str, timeout: float = 10) -> str:
    """GET `url` from the host, retrying while nothing listens yet (a server still starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def runtime_caught_up(runtime_address: str, engine_ids: set[str], namespace: str = "pyengine",
                      timeout: float = 10) -> None:
    """Wait until the runtime holds no container the engine has removed: an `--rm` container's task and
    rootfs go just after `docker run --rm` has returned (engine/containers/departures.py)."""
    async def left() -> set[str]:
        async with Client(runtime_address, namespace) as c:
            return {rc.id for rc in await c.containers()} - engine_ids

    deadline = time.monotonic() + timeout
    while (extra := asyncio.run(left())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not extra, f"the runtime still holds removed containers {sorted(extra)}"
