"""What a scrape writes: the engine's numbers as Prometheus metric families, in the text format every
Prometheus version reads.

The one engine module that imports prometheus_client: engine/metrics/service.py loads it with the first
scrape (engine/lazy.py), so an engine that is never scraped does without it. It runs in the scrape's worker
thread, on copies the event loop took (engine/metrics/tally.py), and keeps nothing between scrapes.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from engine.containers.state import Status
from engine.metrics.containers import Row
from engine.metrics.tally import CounterCopy, HistogramCopy

_HEALTH_STATES = ("starting", "healthy", "unhealthy")
_LABELS = ["id", "name"]


class Exposition:
    def render(self, requests: HistogramCopy, transfer_bytes: CounterCopy, transfer_seconds: HistogramCopy,
               containers: list[Row], subscribers: list[int], published: list[tuple[str, int]]) -> bytes:
        """Blocking: the text of one scrape, its families in the order they have always had."""
        families = [_histogram(requests), _counter(transfer_bytes), _histogram(transfer_seconds),
                    *_containers(containers), *_events(subscribers, published)]
        registry = CollectorRegistry()
        registry.register(_Families(families))
        return generate_latest(registry)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _counter(c: CounterCopy) -> Metric:
    """As prometheus_client's Counter shows it, without the `_created` series (a start time the 0.0.4 format can
    only carry as a series of its own: twice the series for nothing)."""
    metric = Metric(c.name, c.documentation, "counter")
    for labels, value in c.values:
        metric.add_sample(c.name + "_total", dict(zip(c.labelnames, labels)), value)
    return metric


def _histogram(h: HistogramCopy) -> Metric:
    """As prometheus_client's Histogram shows it: cumulative buckets, the count, the sum (no `_created`)."""
    metric = Metric(h.name, h.documentation, "histogram")
    les = _le(h.bounds)
    for series in h.series:
        labels = dict(zip(h.labelnames, series.labels))
        total = 0.0
        for le, count in zip(les, series.counts):
            total += count
            metric.add_sample(h.name + "_bucket", {**labels, "le": le}, total)
        metric.add_sample(h.name + "_count", labels, total)
        metric.add_sample(h.name + "_sum", labels, series.sum)
    return metric


def _le(bounds: tuple[float, ...]) -> list[str]:
    """The bounds as Prometheus writes them (`0.1`, `10.0`, `+Inf`)."""
    return [floatToGoString(b) for b in bounds]  # type: ignore[no-untyped-call]  # unannotated in prometheus_client


def _events(subscribers: list[int], published: list[tuple[str, int]]) -> Iterator[Metric]:
    """`subscribers`: each GET /events client's backlog; `published`: events by object type."""
    count = GaugeMetricFamily("pyengine_events_subscribers", "Clients following GET /events.")
    count.add_metric([], len(subscribers))
    yield count
    lag = GaugeMetricFamily("pyengine_events_subscriber_lag_events",
                            "Events published and not yet read by the slowest subscriber (one is dropped "
                            "when its queue of 1024 fills).")
    lag.add_metric([], max(subscribers, default=0))
    yield lag
    by_type = CounterMetricFamily("pyengine_events_published", "Events published, by object type.", labels=["type"])
    for type_, n in sorted(published):
        by_type.add_metric([type_], n)
    yield by_type


def _containers(rows: list[Row]) -> Iterator[Metric]:
    states = GaugeMetricFamily("pyengine_containers", "Containers by state.", labels=["state"])
    by_state = Counter(r.status for r in rows)
    for status in Status:
        states.add_metric([status.value], by_state.get(status.value, 0))
    yield states
    yield from _records(rows)
    yield from _cgroups(rows)
    yield from _networks(rows)


def _records(rows: list[Row]) -> Iterable[Metric]:
    """What the engine's own records say, for every container."""
    restarts = GaugeMetricFamily(
        "pyengine_container_restart_count",
        "Restarts by the restart policy since the container was last started by a user (Docker's RestartCount).",
        labels=_LABELS)
    ooms = CounterMetricFamily("pyengine_container_oom_kills",
                               "Exits of the container's process by the kernel's OOM killer seen by this engine.",
                               labels=_LABELS)
    health = GaugeMetricFamily("pyengine_container_health_status",
                               "1 for the healthcheck's current status, 0 for the others (running containers "
                               "with a healthcheck).", labels=[*_LABELS, "status"])
    for r in rows:
        restarts.add_metric([r.id, r.name], r.restart_count)
        ooms.add_metric([r.id, r.name], r.oom_kills)
        if r.health is not None:
            for status in _HEALTH_STATES:
                health.add_metric([r.id, r.name, status], 1 if r.health == status else 0)
    return restarts, ooms, health


def _cgroups(rows: list[Row]) -> Iterable[Metric]:
    """The running containers' cgroup numbers, where the kernel gives them."""
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
        "cpu": CounterMetricFamily("pyengine_container_cpu_usage_seconds",
                                   "CPU time consumed by the container's processes.", labels=_LABELS),
        "memory": GaugeMetricFamily("pyengine_container_memory_usage_bytes",
                                    "Memory charged to the container's cgroup, page cache included.",
                                    labels=_LABELS),
        "working_set": GaugeMetricFamily("pyengine_container_memory_working_set_bytes",
                                         "Memory usage less inactive page cache (what docker stats shows).",
                                         labels=_LABELS),
        "max": GaugeMetricFamily("pyengine_container_memory_max_usage_bytes",
                                 "Highest memory usage recorded by the kernel.", labels=_LABELS),
        "limit": GaugeMetricFamily("pyengine_container_memory_limit_bytes",
                                   "The container's memory limit (containers with one).", labels=_LABELS),
        "pids": GaugeMetricFamily("pyengine_container_pids", "Processes and threads in the container.",
                                  labels=_LABELS),
        "io": CounterMetricFamily("pyengine_container_blkio_bytes",
                                  "Bytes read from and written to block devices.", labels=[*_LABELS, "op"]),
    }
    for r in rows:
        m, labels = r.metrics, [r.id, r.name]
        if m is None:
            continue
        if m.cpu_usage_ns is not None:
            families["cpu"].add_metric(labels, m.cpu_usage_ns / 1e9)
        if m.memory_usage is not None:
            families["memory"].add_metric(labels, m.memory_usage)
            families["working_set"].add_metric(labels, max(0, m.memory_usage - (m.memory_inactive_file or 0)))
        if m.memory_max_usage is not None:
            families["max"].add_metric(labels, m.memory_max_usage)
        if m.memory_limit is not None:
            families["limit"].add_metric(labels, m.memory_limit)
        if m.pids_current is not None:
            families["pids"].add_metric(labels, m.pids_current)
        for op, value in (("read", m.io_read_bytes), ("write", m.io_write_bytes)):
            if value is not None:
                families["io"].add_metric([*labels, op], value)
    return families.values()


def _networks(rows: list[Row]) -> Iterable[Metric]:
    """Each running container's interfaces (its own network namespace; loopback left out)."""
    labels = [*_LABELS, "interface"]
    names = {
        "rx_bytes": ("receive_bytes", "Bytes received"),
        "rx_packets": ("receive_packets", "Packets received"),
        "rx_errors": ("receive_errors", "Receive errors"),
        "rx_dropped": ("receive_dropped", "Received packets dropped"),
        "tx_bytes": ("transmit_bytes", "Bytes sent"),
        "tx_packets": ("transmit_packets", "Packets sent"),
        "tx_errors": ("transmit_errors", "Transmit errors"),
        "tx_dropped": ("transmit_dropped", "Packets to send dropped"),
    }
    families = {key: CounterMetricFamily(f"pyengine_container_network_{name}", f"{text} on the interface.",
                                         labels=labels) for key, (name, text) in names.items()}
    for r in rows:
        for dev in r.net:
            for key, family in families.items():
                family.add_metric([r.id, r.name, dev.interface], getattr(dev, key))
    return families.values()
