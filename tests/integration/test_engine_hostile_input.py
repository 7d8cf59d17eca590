"""Hostile input a session 18 audit found answered with a 500, a hang or lines written where they do not belong:
each is now a 400 naming it (docs/compatibility.md, session 18)."""
from __future__ import annotations

import bz2
import gzip
import io
import json
import subprocess
import tarfile

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def _import(engine, body: bytes) -> tuple[int, str]:
    out = subprocess.run(["curl", "-sS", "--unix-socket", engine.address, "-X", "POST", "-o", "-",
                          "-w", "\n%{http_code}", "--data-binary", "@-", "-H", "Content-Type: application/x-tar",
                          "http://x/images/create?fromSrc=-&repo=hostile"],
                         input=body, capture_output=True, timeout=60, check=True).stdout.decode()
    text, _, status = out.rpartition("\n")
    return int(status), text


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def test_corrupt_compressed_imports_are_refused(engine) -> None:
    packed = gzip.compress(_tar())
    bad_crc = packed[:-8] + bytes(8)
    for body in (bad_crc, packed[: len(packed) // 2], b"BZh9" + bytes(200), b"\xfd7zXZ\x00" + bytes(200)):
        status, text = _import(engine, body)
        assert status == 400, text
    assert _import(engine, bz2.compress(_tar()))[0] == 200
    ok(engine, "rmi", "hostile")


def test_values_that_would_write_lines_of_their_own_are_refused(engine) -> None:
    for body in ({"Image": "busybox", "Cmd": ["ec\u0000ho"]},
                 {"Image": "busybox", "Cmd": ["true"], "Hostname": "a\n1.2.3.4 evil"},
                 {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"DnsSearch": ["a\nnameserver 6.6.6.6"]}},
                 {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"DnsOptions": ["ndots:1\nnameserver 1.1.1.1"]}}):
        status, _, text = curl(engine, "POST", "/containers/create", json.dumps(body))
        assert status == 400, text
    assert ok(engine, "ps", "-aq") == ""
    status, _, text = curl(engine, "POST", "/networks/create", json.dumps(
        {"Name": "nbad", "Options": {"com.docker.network.bridge.name": "../../x"}}))
    assert status == 400 and "bridge.name" in json.loads(text)["message"], text
