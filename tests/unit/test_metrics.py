"""The metrics' parts without daemons: registries kept apart, series that go with their containers,
transfer accounting from progress messages, /proc/net/dev parsing, runtime route templates."""
from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from engine import config as engine_config
from engine.containers.store import Container, ContainerStore
from engine.daemon import main as engine_main
from engine.events import EventBus
from engine.metrics.containers import parse_net_dev
from engine.metrics.exposition import _counter, _Families, _histogram
from engine.metrics.service import EngineMetrics, parse_address
from engine.metrics.tally import Counters, Histograms
from runtime.client.testing import FakeRuntime
from runtime.api.app import build
from runtime.metrics.requests import route_template
from runtime.services import Services


def _samples(text: bytes) -> list[Sample]:
    return [s for f in text_string_to_metric_families(text.decode()) for s in f.samples]


def _container(n: int) -> Container:
    return Container(id=f"{n:064x}", name=f"c{n}", created=0, image="busybox", image_ref="busybox",
                     image_id="sha256:" + "cd" * 32, path="sh", args=[], config={}, host_config={})


async def test_engines_in_one_process_keep_their_numbers_apart(tmp_path: Path) -> None:
    engines = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        store, bus = ContainerStore(tmp_path / str(i) / "containers.db"), EventBus()
        engines.append((EngineMetrics(FakeRuntime(), store, bus), store, bus))
    (first, store, bus), (second, _, _) = engines
    c = _container(1)
    store.reserve(c.name, c.id)
    await store.save(c)
    bus.container(c, "oom")
    one, two = _samples(await first.scrape()), _samples(await second.scrape())
    assert [s.value for s in one if s.name == "pyengine_container_oom_kills_total"] == [1]
    assert not [s for s in two if s.name == "pyengine_container_oom_kills_total"]
    assert {s.value for s in two if s.name == "pyengine_events_published_total"} == {0}


async def test_a_removed_container_leaves_no_series(tmp_path: Path) -> None:
    store, bus = ContainerStore(tmp_path / "containers.db"), EventBus()
    metrics = EngineMetrics(FakeRuntime(), store, bus)
    baseline = len(_samples(await metrics.scrape()))
    for n in range(50):
        c = _container(n)
        store.reserve(c.name, c.id)
        await store.save(c)
        bus.container(c, "oom")
    assert len(_samples(await metrics.scrape())) > baseline
    for c in store.all():
        await store.delete(c)
        bus.container(c, "destroy")
    assert len(_samples(await metrics.scrape())) == baseline


async def _messages(items: list[dict[str, Any]], fail: bool = False) -> AsyncGenerator[dict[str, Any], None]:
    for item in items:
        yield item
    if fail:
        raise RuntimeError("registry went away")


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_transfers_count_layer_bytes_and_outcomes(tmp_path: Path) -> None:
    metrics = EngineMetrics(FakeRuntime(), ContainerStore(tmp_path / "containers.db"), EventBus())
    pull = [
        {"status": "Pulling from library/x", "id": "latest"},
        {"status": "Already exists", "progressDetail": {}, "id": "aaa"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbb"},
        {"status": "Downloading", "progressDetail": {"current": 100, "total": 1000}, "id": "bbb"},
        {"status": "Downloading", "progressDetail": {"current": 700, "total": 1000}, "id": "bbb"},
        {"status": "Download complete", "progressDetail": {}, "id": "bbb"},
        {"status": "Extracting", "progressDetail": {"current": 0, "total": 1000}, "id": "bbb"},
        {"status": "Digest: sha256:..."},
    ]
    async for _ in metrics.transfers.pull(_messages(pull)):
        pass
    with pytest.raises(RuntimeError):
        async for _ in metrics.transfers.pull(_messages(pull[:4], fail=True)):
            pass
    early = metrics.transfers.push(_messages([{"status": "Pushing", "progressDetail": {"current": 5, "total": 9},
                                               "id": "ccc"}] * 3))
    await anext(early)
    await early.aclose()
    samples = _samples(await metrics.scrape())
    assert _value(samples, "pyengine_image_transfer_bytes_total", direction="pull") == 1000 + 100
    assert _value(samples, "pyengine_image_transfer_bytes_total", direction="push") == 5
    count = "pyengine_image_transfer_duration_seconds_count"
    assert _value(samples, count, direction="pull", outcome="success") == 1
    assert _value(samples, count, direction="pull", outcome="error") == 1
    assert _value(samples, count, direction="push", outcome="cancelled") == 1


def test_net_dev_leaves_loopback_out() -> None:
    text = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
"""
    [dev] = parse_net_dev(text)
    assert (dev.interface, dev.rx_bytes, dev.rx_packets, dev.rx_errors, dev.rx_dropped) == ("eth0", 5000, 40, 1, 2)
    assert (dev.tx_bytes, dev.tx_packets, dev.tx_errors, dev.tx_dropped) == (3000, 30, 3, 4)


def test_metrics_addr() -> None:
    assert parse_address("127.0.0.1:9323") == ("127.0.0.1", 9323)
    assert parse_address("[::1]:9323") == ("::1", 9323)
    assert parse_address(":9323") == ("0.0.0.0", 9323)
    for bad in ("9323", "host:", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="metrics-addr"):
            parse_address(bad)


def test_metrics_addr_flag_and_daemon_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"metrics-addr": "127.0.0.1:9323"}')
    assert engine_config.load(str(daemon_json), {}).metrics_addr == "127.0.0.1:9323"
    assert engine_config.load(str(daemon_json), {"metrics_addr": "0.0.0.0:9400"}).metrics_addr == "0.0.0.0:9400"
    daemon_json.write_text('{"metrics-addr": "9323"}')
    for argv in (["--metrics-addr", "localhost"], ["--config-file", str(daemon_json)]):
        with pytest.raises(SystemExit) as exit_:
            engine_main(argv)
        assert exit_.value.code == 2
        assert "invalid configuration: metrics-addr" in capsys.readouterr().err


async def test_runtime_route_templates() -> None:
    app = build(cast(Services, None)).app

    async def template(method: str, path: str) -> str:
        request = make_mocked_request(method, path, app=app)
        request._match_info = await app.router.resolve(request)  # what aiohttp's dispatch does
        return route_template(request)

    assert await template("GET", "/v1/tasks/abc/metrics") == "/v1/tasks/{task_id}/metrics"
    # `{key:path}` routes: the key's slashes stay out of the series.
    assert await template("GET", "/v1/snapshots/overlayfs/a/b") == "/v1/snapshots/{snapshotter}/{key}"
    assert await template("GET", "/metrics") == "/metrics"
    assert await template("GET", "/nowhere/at/all") == "unmatched"


def test_tallies_are_written_as_prometheus_client_wrote_its_counters_and_histograms() -> None:
    """The text a scrape writes for the counted series is prometheus_client's own Counter and Histogram's."""
    theirs = CollectorRegistry()
    counter = Counter("t_bytes", "Bytes.", ["direction"], registry=theirs)
    histogram = Histogram("t_seconds", "Seconds.", ["method", "status"], registry=theirs)
    custom = Histogram("t_custom_seconds", "Custom.", ["kind"], buckets=(0.5, 30.0), registry=theirs)
    ours = (Counters("t_bytes", "Bytes.", ("direction",)), Histograms("t_seconds", "Seconds.", ("method", "status")),
            Histograms("t_custom_seconds", "Custom.", ("kind",), buckets=(0.5, 30.0)))
    counter.labels("push")
    ours[0].touch(("push",))
    for i in range(40):
        value = i * 0.37
        counter.labels("pull").inc(i)
        ours[0].inc(("pull",), i)
        histogram.labels("GET", str(200 + i % 3)).observe(value)
        ours[1].observe(("GET", str(200 + i % 3)), value)
        custom.labels("x").observe(value)
        ours[2].observe(("x",), value)
    families = _Families([_counter(ours[0].snapshot()), _histogram(ours[1].snapshot()),
                          _histogram(ours[2].snapshot())])
    registry = CollectorRegistry()
    registry.register(families)
    # The engine never wrote the `_created` series (start times the 0.0.4 format can only carry as series apart).
    expected = b"".join(line for line in generate_latest(theirs).splitlines(keepends=True) if b"_created" not in line)
    assert generate_latest(registry) == expected
