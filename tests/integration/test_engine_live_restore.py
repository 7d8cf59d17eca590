"""Live restore and a control plane that never blocks (issue 6), with the real docker CLI.

kill -9 of either daemon or both: containers keep running, serving and logging; when the daemons come
back, `docker ps` is right, an exit during the downtime shows its real code, logs and events catch up.
"""
from __future__ import annotations

import datetime
import http.client
import json
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable

import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_restart_policies as policies
from tests.integration.test_engine_containers import ok

engine, no_leftovers = policies.engine, policies.no_leftovers
PAGE = "live"


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.read().decode()


def serving(url: str) -> bool:
    """Whether httpd answers yet (it may still be starting: connection refused)."""
    try:
        return PAGE in fetch(url)
    except OSError:
        return False


def inspect(engine: EngineDaemon, name: str) -> dict:
    return json.loads(ok(engine, "inspect", name))[0]


def test_kill_9_of_both_daemons(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "lweb", "-p", "127.0.0.1:18300:80", "busybox", "sh", "-c",
       f"mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 80 -h /www")
    ok(engine, "run", "-d", "--network", "none", "--name", "ticker", "busybox", "sh", "-c",
       "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")
    ok(engine, "run", "-d", "--network", "none", "--name", "short", "busybox", "sh", "-c", "sleep 2; exit 7")
    until(lambda: serving("http://127.0.0.1:18300/"))
    down_at = time.time()
    engine.kill9()
    engine.runtime.kill9()
    # Nothing of either daemon is in the data path: the port serves, the ticker ticks, `short` ends.
    for _ in range(10):
        assert PAGE in fetch("http://127.0.0.1:18300/")
        time.sleep(0.3)
    engine.runtime.start()
    engine.start()
    until(lambda: inspect(engine, "short")["State"]["Status"] == "exited")
    short = inspect(engine, "short")["State"]
    assert short["ExitCode"] == 7
    assert {"lweb", "ticker"} <= set(ok(engine, "ps", "--format", "{{.Names}}").split())
    assert PAGE in fetch("http://127.0.0.1:18300/")
    ticks = [int(line.split()[1]) for line in ok(engine, "logs", "ticker").split("\n") if line]
    assert ticks == list(range(1, len(ticks) + 1)) and len(ticks) >= 15  # the downtime's lines are there
    follow = subprocess.Popen(["docker", "logs", "-f", "--tail", "1", "ticker"], env=engine.env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        first, second = follow.stdout.readline(), follow.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("tick") and second.startswith("tick")
    finally:
        follow.kill()
        follow.wait()
    attach = subprocess.Popen(["docker", "attach", "--no-stdin", "ticker"], env=engine.env(), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert attach.stdout.readline().startswith("tick")  # type: ignore[union-attr]
    finally:
        attach.kill()
        attach.wait()
    died = ok(engine, "events", "--since", str(down_at), "--until", str(time.time()), "--filter",
              "container=short", "--filter", "event=die", "--format", "{{.Actor.Attributes.exitCode}}")
    assert died.split() == ["7"]


def test_kill_9_of_the_engine_alone(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "alone", "busybox", "sleep", "1000")
    pid = inspect(engine, "alone")["State"]["Pid"]
    engine.kill9()
    engine.start()
    after = inspect(engine, "alone")["State"]
    assert after["Running"] and after["Pid"] == pid
    assert ok(engine, "exec", "alone", "echo", "ok") == "ok\n"


def _get(path: str, sock_path: str) -> float:
    conn = http.client.HTTPConnection("localhost")
    conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.sock.connect(sock_path)
    started = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - started
    conn.close()
    assert resp.status == 200
    return elapsed


def _p99(engine: EngineDaemon, n: int = 60) -> float:
    times = sorted(_get("/v1.41/containers/json?all=1", engine.address) for _ in range(n))
    return times[int(len(times) * 0.99) - 1]


def test_control_plane_stays_fast_while_stops_hang(engine: EngineDaemon) -> None:
    names = [f"stuck{i}" for i in range(10)]
    for name in names:
        # sh as pid 1 has no SIGTERM handler: the signal is ignored and only the 60 s SIGKILL would end it.
        ok(engine, "run", "-d", "--network", "none", "--name", name, "busybox", "sh", "-c", "sleep 1000")
    idle = _p99(engine)
    stops = [subprocess.Popen(["docker", "stop", "-t", "60", name], env=engine.env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for name in names]
    try:
        time.sleep(0.5)
        busy = _p99(engine)
        ping = statistics.median(_get("/_ping", engine.address) for _ in range(20))
        assert all(p.poll() is None for p in stops)  # the stops are still waiting out their timeout
        # Twice the idle p99, with a floor for scheduler noise on a loaded 2-CPU machine.
        assert busy <= max(2 * idle, 0.02), (idle, busy)
        assert ping < 0.05
        assert ok(engine, "inspect", "-f", "{{.State.Status}}", "stuck0").strip() == "running"
    finally:
        for p in stops:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_published_port_serves_through_ten_kills_of_both_daemons(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "steady", "-p", "127.0.0.1:18301:80", "busybox", "sh", "-c",
       f"mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 80 -h /www")
    until(lambda: serving("http://127.0.0.1:18301/"))
    sent, failed, stop = [0], [0], threading.Event()

    def load() -> None:
        while not stop.is_set():
            sent[0] += 1
            try:
                assert PAGE in fetch("http://127.0.0.1:18301/")
            except (OSError, AssertionError):
                failed[0] += 1
            time.sleep(0.05)  # 20 requests a second

    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        for _ in range(10):
            engine.kill9()
            engine.runtime.kill9()
            time.sleep(0.3)
            engine.runtime.start()
            engine.start()
    finally:
        stop.set()
        t.join(10)
    assert sent[0] > 50 and failed[0] == 0, f"{failed[0]} of {sent[0]} requests failed"
    assert inspect(engine, "steady")["State"]["Running"]


def test_a_stop_does_not_wait_for_streaming_clients(engine: EngineDaemon) -> None:
    # As dockerd: open streams end with the engine (their clients see the end), which stops at once.
    ok(engine, "run", "-d", "--network", "none", "--name", "chatty", "busybox", "sh", "-c",
       "while true; do echo tick; sleep 0.2; done")
    clients = [subprocess.Popen(["docker", *args], env=engine.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
               for args in (["events"], ["logs", "-f", "chatty"], ["wait", "chatty"], ["stats", "chatty"])]
    try:
        time.sleep(1)
        began = time.monotonic()
        engine.stop(timeout=30)
        assert time.monotonic() - began < 10
    finally:
        for client in clients:
            client.kill()
            client.wait()
        engine.start()
    assert inspect(engine, "chatty")["State"]["Running"]
    ok(engine, "rm", "-f", "chatty")


def test_an_exit_while_the_runtime_is_away_keeps_its_time(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "brief", "busybox", "sh", "-c", "sleep 3; exit 4")
    ended = _when(inspect(engine, "brief")["State"]["StartedAt"]) + 3
    engine.runtime.kill9()  # it exits while pyruntimed is away
    time.sleep(6)
    engine.runtime.start()
    until(lambda: inspect(engine, "brief")["State"]["Status"] == "exited")
    state = inspect(engine, "brief")["State"]
    assert state["ExitCode"] == 4 and abs(_when(state["FinishedAt"]) - ended) < 1.5, (state["FinishedAt"], ended)
    ok(engine, "rm", "brief")


def _when(rfc3339: str) -> float:
    return datetime.datetime.fromisoformat(rfc3339[:26].rstrip("Z") + "+00:00").timestamp()
