"""How many requests the engine makes of the runtime to start a container, counted on the wire.

A proxy between pyengined and pyruntimed records the request line of every request the
engine sends. Keep-alive connections carry many, and a JSON body runs straight into the next
request line, so lines are found anywhere in the stream (no body holds "POST /v1/... HTTP/1.1").
"""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine

_REQUEST = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (/v1/[^ ?]*)\S* HTTP/1\.1\r\n")


class CountingProxy:
    def __init__(self, listen: str, upstream: str) -> None:
        self.listen, self.upstream = listen, upstream
        self.requests: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_unix_server(self._serve, self.listen))
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            tail = b""
            while data := await src.read(65536):
                if count:
                    # A request line split across reads is matched once, with what came before it.
                    window = tail + data
                    for m in _REQUEST.finditer(window):
                        if m.end() > len(tail):
                            self.requests.append(f"{m.group(1).decode()} {m.group(2).decode()}")
                    tail = window[-256:]
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False),
                             return_exceptions=True)


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[tuple[EngineDaemon, CountingProxy]]:
    base = str(tmp_path_factory.mktemp("rt"))
    listen = os.path.join(base, "counting.sock")
    with CountingProxy(listen, os.path.join(base, "runtime.sock")) as proxy:
        with mirrored_engine(base, registry.host, extra_args=["--runtime-address", listen]) as e:
            yield e, proxy


def _docker(engine: EngineDaemon, *args: str) -> str:
    out = subprocess.run(["docker", "-H", engine.host, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _task_requests(proxy: CountingProxy, since: int) -> list[str]:
    # The event stream and its reconcile belong to no request of the client's.
    return [r for r in proxy.requests[since:] if not r.startswith("GET /v1/events")]


def test_start_costs_two_runtime_requests(counted: tuple[EngineDaemon, CountingProxy]) -> None:
    engine, proxy = counted
    cid = _docker(engine, "create", "--network", "none", "busybox", "sleep", "60")
    try:
        before = len(proxy.requests)
        _docker(engine, "start", cid)
        assert _task_requests(proxy, before) == ["POST /v1/tasks", f"POST /v1/tasks/{cid}/start"]
    finally:
        _docker(engine, "rm", "-f", cid)



def test_exec_costs_two_runtime_requests_until_it_runs(counted: tuple[EngineDaemon, CountingProxy]) -> None:
    engine, proxy = counted
    cid = _docker(engine, "run", "-d", "--network", "none", "busybox", "sleep", "60")
    try:
        before = len(proxy.requests)
        assert _docker(engine, "exec", cid, "echo", "hi") == "hi"
        # The process is dropped after the client has its exit code: wait for that request too.
        deadline = time.monotonic() + 10
        while len(sent := _task_requests(proxy, before)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        task = f"/v1/tasks/{cid}"
        eid = sent[1].split("/")[-2]
        # Creating the held-back process answers with its IO (attaching is to conmon, not the runtime), then it
        # starts: two requests until it runs; then its exit code, and the process is dropped.
        assert sent == [f"POST {task}/execs", f"POST {task}/execs/{eid}/start", f"POST {task}/wait",
                        f"DELETE {task}/execs/{eid}"]
    finally:
        _docker(engine, "rm", "-f", cid)
