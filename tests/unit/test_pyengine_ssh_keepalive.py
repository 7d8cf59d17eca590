"""ssh:// connections serve a command's requests in turn, and one the far side closed while idle is dialled
again (the CLI's connection handling, against a stand-in for `ssh HOST docker system dial-stdio`)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cli.pyengine.api import Engine

# The far side: answers requests on its stdio, logs each process start, and after `limit` answers exits
# without saying so (as a daemon closing an idle keep-alive connection).
FAR_SIDE = r"""
import sys
log, limit = sys.argv[1], int(sys.argv[2])
open(log, "a").write("start\n")
stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
for _ in range(limit):
    line = stdin.readline()
    if not line:
        break
    length = 0
    while (header := stdin.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    stdin.read(length)
    body = line.split()[1]
    stdout.write(b"HTTP/1.1 200 OK\r\nApi-Version: 1.50\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    stdout.flush()
"""


@pytest.mark.parametrize(("limit", "processes"), [(100, 1), (2, 3)])
def test_requests_share_the_ssh_process_until_it_goes(tmp_path: Path, limit: int, processes: int) -> None:
    log = tmp_path / "far.log"
    engine = Engine("ssh://far.example")
    engine._ssh = [sys.executable, "-c", FAR_SIDE, str(log), str(limit)]
    answers = []
    for i in range(5):
        with engine.open("POST" if i % 2 else "GET", f"/r{i}") as resp:
            answers.append(resp.read())
    assert answers == [f"/v1.50/r{i}".encode() for i in range(5)]
    engine._close_idle()
    # With a limit of 2: the ping and r0 on the first process, r1 and r2 on the second, r3 and r4 on the third.
    assert log.read_text().count("start") == processes
