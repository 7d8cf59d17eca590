"""The durable event journal (issue 14, acceptance 5), with the real docker CLI and pyctr.

Events outlive both daemons: `docker events --since <before the restart>` and `pyctr events --since` replay
them. 10,000 events with a subscriber that never reads: `_ping` stays fast while they are produced and the
stalled subscriber is dropped, its connection cut.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.daemons import BIN, EngineDaemon, mirrored_engine
from tests.integration.test_engine_containers import ok

EVENTS = 10_000
PRODUCERS = 4

# Runs in its own process, so that the test's pings share no interpreter lock with the load.
_PRODUCER = r"""
import http.client, socket, sys, threading
address, prefix, count, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(address)

def work(w):
    c = Conn("x")
    for i in range(w, count // 2, workers):
        name = f"{prefix}{i}"
        for method, path, body in (("POST", "/volumes/create", '{"Name": "%s"}' % name),
                                   ("DELETE", f"/volumes/{name}", None)):
            c.request(method, path, body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            assert r.status < 300, (method, path, r.status)

threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
for t in threads: t.start()
for t in threads: t.join()
"""


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("x", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self._path)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


def _docker_events(engine: EngineDaemon, since: float, *filters: str) -> list[dict]:
    args = ["events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}", "--format", "{{json .}}"]
    for f in filters:
        args += ["--filter", f]
    return [json.loads(line) for line in ok(engine, *args).splitlines()]


def _pyctr_events(address: str, since: float, until_topic: str, cid: str) -> list[dict]:
    """`pyctr events --since` lines up to the first `until_topic` envelope about `cid` (the command follows the
    live stream after the replay; it is stopped once that line came)."""
    env = dict(os.environ, PYCTR_ADDRESS=address)
    proc = subprocess.Popen([str(BIN / "pyctr"), "events", "--since", f"{since:.6f}"], env=env,
                            stdout=subprocess.PIPE, text=True)
    got: list[dict] = []
    stopper = threading.Timer(60, proc.kill)  # a hang fails below instead of blocking the run
    stopper.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            env_ = json.loads(line)
            got.append(env_)
            if env_["topic"] == until_topic and cid in json.dumps(env_["event"]):
                break
    finally:
        stopper.cancel()
        proc.kill()
        proc.wait()
    return got


def test_events_survive_a_restart_of_both_daemons(engine: EngineDaemon) -> None:
    t0 = time.time()
    ok(engine, "run", "--name", "before-restart", "busybox", "true")
    cid = json.loads(ok(engine, "inspect", "before-restart"))[0]["Id"]
    engine.stop()
    engine.runtime.restart()
    engine.start()
    try:
        evs = _docker_events(engine, t0, "container=before-restart")
        assert [e["Action"] for e in evs if e["Action"] in ("create", "start", "die")] == ["create", "start", "die"]
        assert {e["Actor"]["ID"] for e in evs} == {cid}

        envelopes = _pyctr_events(engine.runtime.address, t0, "/tasks/exit", cid)
        lifecycle = ("/containers/create", "/tasks/start", "/tasks/exit")
        topics = [e["topic"] for e in envelopes if cid in json.dumps(e["event"]) and e["topic"] in lifecycle]
        assert topics == list(lifecycle)
        assert all(e["timestamp"] >= t0 for e in envelopes)
    finally:
        ok(engine, "rm", "before-restart")


def _ping_latencies(address: str, stop: threading.Event, out: list[float]) -> None:
    conn = UnixHTTP(address)
    while not stop.is_set():
        start = time.perf_counter()
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        resp.read()
        out.append(time.perf_counter() - start)
        assert resp.status == 200
        time.sleep(0.005)
    conn.close()


def _listeners(engine: EngineDaemon) -> int:
    return int(ok(engine, "info", "--format", "{{.NEventsListener}}").strip())


def test_a_stalled_subscriber_is_dropped_and_the_daemon_stays_responsive(engine: EngineDaemon) -> None:
    t0 = time.time()
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(engine.address)
    stalled.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    while _listeners(engine) != 1:
        time.sleep(0.05)

    latencies: list[float] = []
    stop = threading.Event()
    pinger = threading.Thread(target=_ping_latencies, args=(engine.address, stop, latencies))
    pinger.start()
    try:
        subprocess.run([sys.executable, "-c", _PRODUCER, engine.address, "jv", str(EVENTS), str(PRODUCERS)],
                       check=True, timeout=600)
    finally:
        stop.set()
        pinger.join()

    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"_ping over {len(latencies)} pings: median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    assert len(latencies) >= 200, len(latencies)
    assert p99 < 0.050, f"_ping p99 {p99 * 1000:.1f} ms over {len(latencies)} pings"

    # Dropped: no listener left, and its connection is cut once what the kernel buffered is read.
    assert _listeners(engine) == 0
    stalled.settimeout(30)
    received = b""
    try:
        while chunk := stalled.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    stalled.close()
    assert received.startswith(b"HTTP/1.1 200")
    log = Path(engine.log_path).read_text()
    assert "fell 1024 events behind and was dropped" in log
    assert '"exc":' not in log  # cutting the connection is no error of the engine's

    # Nothing was lost for a subscriber that reads: the journal has every one of them.
    volume_events = _docker_events(engine, t0, "type=volume")
    assert len(volume_events) == EVENTS
    assert sum(e["Action"] == "create" for e in volume_events) == EVENTS // 2
