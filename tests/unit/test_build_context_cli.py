"""The context the real docker CLI (legacy builder) sends, received by ContextStore behind a minimal POST /build.

The server here only pings and answers /build with the context it received (Dockerfile name and text,
files), so the CLI's own tar is what is tested: .dockerignore applied client-side and here, and -f
pointing outside the context (the CLI adds the file as .dockerfile.<hex> and lists it in .dockerignore).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from engine.builder.context import ContextStore

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[str, ContextStore, list[dict[str, object]]]]:
    store = ContextStore(tmp_path / "contexts")
    seen: list[dict[str, object]] = []

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="OK", headers={"Api-Version": "1.41", "Builder-Version": "1", "OSType": "linux"})

    async def build(request: web.Request) -> web.StreamResponse:
        async with await store.from_request(request) as ctx:
            seen.append({"name": ctx.dockerfile_name, "text": ctx.dockerfile,
                         "files": sorted(str(p.relative_to(ctx.directory)) for p in ctx.directory.rglob("*"))})
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(json.dumps({"stream": "Successfully built 0123456789ab\n"}).encode() + b"\r\n")
        return resp

    app = web.Application()
    app.router.add_route("*", "/_ping", ping)
    app.router.add_route("*", r"/v{version:[0-9.]+}/_ping", ping)
    app.router.add_post(r"/v{version:[0-9.]+}/build", build)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = str(tmp_path / "d.sock")
    await web.UnixSite(runner, sock).start()
    try:
        yield sock, store, seen
    finally:
        await runner.cleanup()


async def _docker(sock: str, *args: str) -> str:
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": "/nonexistent"}
    proc = await asyncio.create_subprocess_exec("docker", *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_cli_context_with_dockerignore_and_outside_dockerfile(
        daemon: tuple[str, ContextStore, list[dict[str, object]]], tmp_path: Path) -> None:
    sock, store, seen = daemon
    ctx = tmp_path / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "app.py").write_text("print(1)\n")
    (ctx / "src" / "app.pyc").write_text("x")
    (ctx / "notes.log").write_text("x")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY src /src\n")
    (ctx / ".dockerignore").write_text("**/*.pyc\n*.log\n")
    (tmp_path / "Other.dockerfile").write_text("FROM scratch\n")

    await _docker(sock, "build", str(ctx))
    assert seen[-1] == {"name": "Dockerfile", "text": "FROM busybox\nCOPY src /src\n",
                        "files": [".dockerignore", "Dockerfile", "src", "src/app.py"]}

    await _docker(sock, "build", "-f", str(tmp_path / "Other.dockerfile"), str(ctx))
    name = seen[-1]["name"]
    assert isinstance(name, str) and name.startswith(".dockerfile.")
    assert seen[-1]["text"] == "FROM scratch\n"
    # The random name was read, then left out of the context as the CLI's .dockerignore asks.
    assert seen[-1]["files"] == [".dockerignore", "Dockerfile", "src", "src/app.py"]
    assert os.listdir(store.root) == []


async def test_sdk_gzip_context_with_outside_dockerfile(
        daemon: tuple[str, ContextStore, list[dict[str, object]]], tmp_path: Path) -> None:
    import docker

    sock, store, seen = daemon
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "app.py").write_text("print(1)\n")
    (ctx / "cache.tmp").write_text("x")
    (ctx / ".dockerignore").write_text("*.tmp\n")
    (tmp_path / "Other.dockerfile").write_text("FROM scratch\nCOPY app.py /\n")

    def build() -> list[dict[str, object]]:
        client = docker.APIClient(base_url=f"unix://{sock}", version="1.41")
        try:
            return list(client.build(path=str(ctx), dockerfile=str(tmp_path / "Other.dockerfile"), gzip=True,
                                     decode=True))
        finally:
            client.close()

    assert await asyncio.to_thread(build) == [{"stream": "Successfully built 0123456789ab\n"}]
    name = seen[-1]["name"]
    assert isinstance(name, str) and name.startswith(".dockerfile.")
    assert seen[-1]["text"] == "FROM scratch\nCOPY app.py /\n"
    # docker-py too lists its random name in the .dockerignore it sends: read, then left out.
    assert seen[-1]["files"] == [".dockerignore", "app.py"]
    assert os.listdir(store.root) == []
