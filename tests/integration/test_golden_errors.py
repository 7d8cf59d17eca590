"""The golden error suite: broken inputs, and the message each gets (issue 14, "errors that say what to do").

Each case in tests/data/golden_errors.json is one broken input; the docker CLI's stderr must match its
`expected` pattern. dockerd's own words come first in each message (tools grep them), the explanation
after; docs/errors.md shows both. The exec cases run programs from one image built here; the port case
holds a host port in this process; the 429 cases pull from a registry stub that rate-limits; the ENOSPC
case pulls into a runtime whose root is a small tmpfs.
"""
from __future__ import annotations

import email.utils
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runtime.tasks.exec_diagnosis import interpreter
from tests.fixtures.daemons import EngineDaemon, RuntimeDaemon, mirrored_engine

DATA = Path(__file__).resolve().parents[1] / "data" / "golden_errors.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text())["cases"]
IMAGE = "golden-broken:latest"
MACHINES = {62: "amd64", 183: "arm64"}


def _host_machine() -> int:
    head = Path(sys.executable).resolve().read_bytes()[:20]
    return int(struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)[0])


HOST = _host_machine()
FOREIGN = 183 if HOST != 183 else 62


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def docker(engine: EngineDaemon, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env={**engine.env(), "DOCKER_BUILDKIT": "0"}, capture_output=True,
                          text=True, timeout=120, check=False, cwd=cwd)


@pytest.fixture(scope="module")
def broken_image(engine: EngineDaemon, tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox with one broken program per exec case."""
    ctx = tmp_path_factory.mktemp("broken")
    elf = bytearray(Path(sys.executable).resolve().read_bytes()[:64])
    foreign = bytearray(elf)
    struct.pack_into("<H" if elf[5] == 1 else ">H", foreign, 18, FOREIGN)
    corrupt = bytearray(elf)
    corrupt[4] = 9  # no such ELF class
    files = {
        "crlf.sh": b"#!/bin/sh\r\necho hello\r\n",
        "app.py": b"#!/usr/bin/python3\nprint('hello')\n",
        "dynamic": Path("/bin/true").read_bytes(),
        "foreign": bytes(foreign) + bytes(4096),
        "via-foreign.sh": b"#!/foreign\n",
        "noshebang.sh": b"echo no shebang here\n",
        "empty": b"",
        "corrupt": bytes(corrupt),
        "bare-shebang.sh": b"#!\necho nothing\n",
    }
    for name, data in files.items():
        (ctx / name).write_bytes(data)
        (ctx / name).chmod(0o755)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY . /\nRUN mkdir -p /usr/local/bin && cp /crlf.sh /usr/local/bin/crlf-tool\n")
    out = docker(engine, "build", "-q", "-t", IMAGE, ".", cwd=ctx)
    assert out.returncode == 0, out.stderr
    return IMAGE


def _pattern(case: dict[str, Any], **values: object) -> re.Pattern[str]:
    text = case["expected"]
    for key, value in values.items():
        text = text.replace("{" + key + "}", re.escape(str(value)))
    return re.compile(text)


def _check(case: dict[str, Any], out: subprocess.CompletedProcess[str], **values: object) -> None:
    assert out.returncode != 0, out.stdout
    pattern = _pattern(case, **values)
    assert pattern.search(out.stderr), f"{case['name']}: {out.stderr!r} does not match {pattern.pattern!r}"
    if case["kind"] in ("exec", "pull429"):
        # dockerd's words come first: what greps them still finds them.
        assert case["dockerd"] in out.stderr


def test_the_suite_has_a_dozen_cases_and_docs_show_each() -> None:
    assert len(CASES) >= 12
    docs = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    for case in CASES:
        assert f"`{case['name']}`" in docs, f"docs/errors.md misses {case['name']}"


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "exec"], ids=lambda c: c["name"])
def test_exec_failures_say_why(engine: EngineDaemon, broken_image: str, case: dict[str, Any]) -> None:
    out = docker(engine, "run", "--rm", "--entrypoint", case["entrypoint"], broken_image)
    _check(case, out, loader=interpreter("/", "/bin/true"), foreign=MACHINES[FOREIGN], foreign_machine=FOREIGN,
           host=MACHINES[HOST], host_machine=HOST)


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "port"], ids=lambda c: c["name"])
def test_a_port_in_use_names_its_process(engine: EngineDaemon, case: dict[str, Any]) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        out = docker(engine, "run", "--rm", "-p", f"127.0.0.1:{port}:80", "busybox", "true")
    _check(case, out, port=port, pid=os.getpid())


class _RateLimited(BaseHTTPRequestHandler):
    retry_after = ""

    def _answer(self, body: bool) -> None:
        if self.path.rstrip("/") == "/v2":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            if body:
                self.wfile.write(b"{}")
            return
        doc = json.dumps({"errors": [{"code": "TOOMANYREQUESTS",
                                      "message": "You have reached your pull rate limit."}]}).encode()
        self.send_response(429)
        self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        if body:
            self.wfile.write(doc)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "pull429"], ids=lambda c: c["name"])
def test_a_rate_limited_pull_says_when_to_retry(engine: EngineDaemon, case: dict[str, Any]) -> None:
    later = time.time() + 7200
    handler = type("Handler", (_RateLimited,), {
        "retry_after": case["retry_after"].replace("{in_two_hours}", email.utils.formatdate(later, usegmt=True))})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        registry = f"127.0.0.1:{server.server_address[1]}"
        out = docker(engine, "pull", f"{registry}/library/limited:1")
    finally:
        server.shutdown()
        server.server_close()
    clock = time.strftime("%H:%M", time.gmtime(later))
    _check(case, out, registry=registry, two_hours_clock=clock)


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "enospc"], ids=lambda c: c["name"])
def test_a_full_disk_names_the_directory_and_its_room(tmp_path: Path, registry, case: dict[str, Any]) -> None:
    (tmp_path / "small").mkdir()
    rt = RuntimeDaemon(str(tmp_path / "small"))
    root = Path(rt.root)
    root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(root)], check=True)
    e = EngineDaemon(rt, extra_args=["--registry-mirror", f"http://{registry.host}"])
    try:
        rt.start()
        e.start()
        out = docker(e, "pull", "busybox")
    finally:
        e.cleanup()
        rt.cleanup()
    _check(case, out, root=str(root))
