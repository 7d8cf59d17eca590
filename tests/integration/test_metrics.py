"""Issue 14 acceptance 3: Prometheus metrics on both daemons.

Both /metrics endpoints (and the engine's --metrics-addr) parse with prometheus_client's own parser;
per-container values move when a container allocates memory, is OOM-killed, restarts, turns unhealthy;
containers created and removed leave no series behind, and request routes are templates, not paths.
"""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.fixtures._net import LOOPBACK, free_port
from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.fixtures.registry import Registry
from tests.integration.test_engine_containers import ok

METRICS_PORT = free_port()
MiB = 1 << 20
# Created and removed in one test: the series count must come back to where it was.
CHURN = 1000


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host,
                         extra_args=["--metrics-addr", f"{LOOPBACK}:{METRICS_PORT}"]) as e:
        yield e


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str, str]:
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        conn.close()


def scrape(conn: http.client.HTTPConnection) -> list[Sample]:
    status, content_type, text = _get(conn, "/metrics")
    assert status == 200, text
    assert content_type.startswith("text/plain; version=0.0.4")
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def engine_samples(engine: EngineDaemon) -> list[Sample]:
    return scrape(_UnixConnection(engine.address))


def runtime_samples(engine: EngineDaemon) -> list[Sample]:
    return scrape(_UnixConnection(engine.runtime.address))


def value(samples: list[Sample], metric: str, **labels: str) -> float | None:
    found = [s.value for s in samples if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (metric, labels, found)
    return found[0] if found else None


def container_id(engine: EngineDaemon, name: str) -> str:
    return ok(engine, "inspect", "-f", "{{.Id}}", name).strip()


def until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_both_daemons_serve_parseable_metrics(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "web", "busybox", "sleep", "1000")
    cid = container_id(engine, "web")
    ok(engine, "inspect", "web")
    ok(engine, "inspect", cid[:12])
    assert _get(_UnixConnection(engine.address), f"/v1.41/nowhere/{cid}")[0] == 404
    samples = engine_samples(engine)
    assert value(samples, "pyengine_containers", state="running") == 1
    assert value(samples, "pyengine_container_cpu_usage_seconds_total", id=cid, name="web") is not None
    assert value(samples, "pyengine_container_pids", id=cid, name="web") == 1
    # Its own network namespace: eth0 on the default bridge, loopback left out.
    assert value(samples, "pyengine_container_network_transmit_bytes_total", id=cid, name="web",
                 interface="eth0") is not None
    assert not [s for s in samples if s.labels.get("interface") == "lo"]
    # The host's interfaces are not a --network host container's.
    ok(engine, "run", "-d", "--network", "host", "--name", "hosted", "busybox", "sleep", "1000")
    hosted = container_id(engine, "hosted")
    samples = engine_samples(engine)
    assert value(samples, "pyengine_container_pids", id=hosted, name="hosted") == 1
    assert not [s for s in samples if s.labels.get("id") == hosted and "network" in s.name]
    # Routes are templates: neither the id nor the name nor the API version shows in a route label.
    routes = {s.labels["route"] for s in samples if s.name == "pyengine_http_request_duration_seconds_count"}
    assert {"/containers/{id}/json", "/_ping", "unmatched"} <= routes
    assert not [r for r in routes if cid[:12] in r or "web" in r or r.startswith("/v1.")]
    inspects = [s for s in samples if s.name == "pyengine_http_request_duration_seconds_count"
                and s.labels["route"] == "/containers/{id}/json" and s.labels["status"] == "200"]
    assert inspects and inspects[0].labels["method"] == "GET" and inspects[0].value >= 3
    assert value(samples, "pyengine_events_subscribers") == 0

    # --metrics-addr serves the same families, and nothing but /metrics.
    tcp = scrape(http.client.HTTPConnection(LOOPBACK, METRICS_PORT, timeout=60))
    assert {s.name for s in tcp} == {s.name for s in samples}
    assert _get(http.client.HTTPConnection(LOOPBACK, METRICS_PORT, timeout=60), "/info")[0] == 404

    rt = runtime_samples(engine)
    assert value(rt, "pyruntimed_tasks", namespace="pyengine", state="running") == 2
    assert (value(rt, "pyruntimed_content_bytes") or 0) > 0 and (value(rt, "pyruntimed_content_blobs") or 0) >= 3
    assert (value(rt, "pyruntimed_snapshot_bytes", snapshotter="overlayfs", kind="committed") or 0) > 0
    assert value(rt, "pyruntimed_snapshot_bytes", snapshotter="overlayfs", kind="active") is not None
    # The engine's monitor, its disk ledger (which follows the image store) and its build cache index.
    assert value(rt, "pyruntimed_events_subscribers") == 3
    rt_routes = {s.labels["route"] for s in rt if s.name == "pyruntimed_http_request_duration_seconds_count"}
    assert "/v1/tasks/{task_id}/metrics" in rt_routes and not [r for r in rt_routes if cid in r]


def test_memory_allocation_moves_the_gauge(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "hog", "busybox", "sleep", "1000")
    cid = container_id(engine, "hog")
    before = value(engine_samples(engine), "pyengine_container_memory_usage_bytes", id=cid, name="hog")
    assert before is not None
    # tmpfs pages are charged to the writer's cgroup and stay there while the file exists.
    ok(engine, "exec", "hog", "sh", "-c", f"head -c {48 * MiB} /dev/zero > /dev/shm/fill")
    samples = engine_samples(engine)
    after = value(samples, "pyengine_container_memory_usage_bytes", id=cid, name="hog")
    assert after is not None and after - before >= 40 * MiB
    assert (value(samples, "pyengine_container_memory_max_usage_bytes", id=cid, name="hog") or 0) >= after


def test_oom_kill_is_counted(engine: EngineDaemon) -> None:
    subprocess.run(["docker", "run", "--name", "oom", "-m", "8m", "--memory-swap", "8m", "busybox", "tail",
                    "/dev/zero"], env=engine.env(), capture_output=True, timeout=120)
    assert json.loads(ok(engine, "inspect", "-f", "{{json .State.OOMKilled}}", "oom")) is True
    cid = container_id(engine, "oom")
    assert value(engine_samples(engine), "pyengine_container_oom_kills_total", id=cid, name="oom") == 1
    ok(engine, "rm", "oom")
    assert not [s for s in engine_samples(engine) if s.labels.get("id") == cid]


def test_restarts_move_the_count(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
    cid = container_id(engine, "flaky")
    until(lambda: value(engine_samples(engine), "pyengine_container_restart_count", id=cid, name="flaky") == 2)
    until(lambda: json.loads(ok(engine, "inspect", "-f", "{{json .State.Status}}", "flaky")) == "exited")
    samples = engine_samples(engine)
    assert value(samples, "pyengine_containers", state="exited") == 1
    # Stopped: no cgroup numbers, only what the records say.
    assert value(samples, "pyengine_container_memory_usage_bytes", id=cid, name="flaky") is None


def test_health_turns_unhealthy(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--network", "none", "--name", "probe", "--health-interval", "200ms",
       "--health-retries", "2", "--health-cmd", "cat /tmp/ok", "busybox", "sh", "-c", "touch /tmp/ok; sleep 1000")
    cid = container_id(engine, "probe")

    def status_is(wanted: str) -> bool:
        samples = engine_samples(engine)
        return value(samples, "pyengine_container_health_status", id=cid, name="probe", status=wanted) == 1

    until(lambda: status_is("healthy"))
    ok(engine, "exec", "probe", "rm", "/tmp/ok")
    until(lambda: status_is("unhealthy"))
    samples = engine_samples(engine)
    assert value(samples, "pyengine_container_health_status", id=cid, name="probe", status="healthy") == 0
    # --network none: only loopback, which is left out.
    assert not [s for s in samples if s.labels.get("id") == cid and "network" in s.name]


def test_event_subscribers_and_published(engine: EngineDaemon) -> None:
    before = value(engine_samples(engine), "pyengine_events_published_total", type="container") or 0
    follower = subprocess.Popen(["docker", "events"], env=engine.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    try:
        until(lambda: value(engine_samples(engine), "pyengine_events_subscribers") == 1)
        ok(engine, "create", "--name", "noted", "busybox", "true")
        assert follower.stdout is not None and b"create" in follower.stdout.readline()
        samples = engine_samples(engine)
        assert (value(samples, "pyengine_events_published_total", type="container") or 0) > before
        assert value(samples, "pyengine_events_subscriber_lag_events") == 0
    finally:
        follower.kill()
        follower.wait()
    until(lambda: value(engine_samples(engine), "pyengine_events_subscribers") == 0)


def test_pull_bytes_and_duration(engine: EngineDaemon) -> None:
    def pulled() -> tuple[float, float]:
        samples = engine_samples(engine)
        return (value(samples, "pyengine_image_transfer_bytes_total", direction="pull") or 0,
                value(samples, "pyengine_image_transfer_duration_seconds_count", direction="pull",
                      outcome="success") or 0)

    bytes_before, pulls_before = pulled()
    ok(engine, "pull", "whiteout")
    bytes_after, pulls_after = pulled()
    assert pulls_after == pulls_before + 1 and bytes_after > bytes_before
    ok(engine, "pull", "whiteout")  # up to date: a pull, no bytes
    assert pulled() == (bytes_after, pulls_after + 1)
    ok(engine, "rmi", "whiteout")


def test_push_bytes_and_duration(engine: EngineDaemon) -> None:
    def pushed() -> tuple[float, float]:
        samples = engine_samples(engine)
        return (value(samples, "pyengine_image_transfer_bytes_total", direction="push") or 0,
                value(samples, "pyengine_image_transfer_duration_seconds_count", direction="push",
                      outcome="success") or 0)

    with Registry() as target:  # pushes change a registry: one of this test's own
        name = f"{target.host}/metrics/busybox:pushed"
        ok(engine, "tag", "busybox", name)
        bytes_before, pushes_before = pushed()
        ok(engine, "push", name)
        bytes_after, pushes_after = pushed()
        assert pushes_after == pushes_before + 1 and bytes_after > bytes_before
        ok(engine, "push", name)  # every layer is there already: a push, no bytes
        assert pushed() == (bytes_after, pushes_after + 1)
        ok(engine, "rmi", name)


@pytest.mark.slow  # about 30 s: a thousand creates and removes
def test_created_and_removed_containers_leave_no_series(engine: EngineDaemon) -> None:
    sdk = docker.DockerClient(base_url=engine.host, timeout=120)

    def series() -> tuple[int, set[str]]:
        samples = engine_samples(engine)
        routes = {s.labels["route"] for s in samples if "route" in s.labels}
        return len(samples), routes

    try:
        # One of each request the churn makes, so their histogram series exist before the baseline.
        sdk.containers.create("busybox", ["true"]).remove()
        engine_samples(engine)  # and of the scrape itself
        baseline, routes = series()

        def churn(i: int) -> str:
            c = sdk.containers.create("busybox", ["true"], name=f"churn-{i}", network_mode="none")
            return str(c.id)

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(churn, range(CHURN)))
        samples = engine_samples(engine)
        assert value(samples, "pyengine_containers", state="created") == CHURN
        assert len({s.labels["id"] for s in samples if "id" in s.labels}) == CHURN
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda cid: sdk.api.remove_container(cid), ids))
        assert series() == (baseline, routes)
    finally:
        sdk.close()
