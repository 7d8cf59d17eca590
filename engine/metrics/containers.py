"""Per-container metrics, read when Prometheus scrapes and at no other time.

`refresh()` (async, before each scrape) asks the runtime for each running container's cgroup
numbers (the same `task_metrics` that `docker stats` reads) and reads the network counters of
its namespace from /proc; `collect()` (sync, inside prometheus_client's exposition) turns that
sample into metric families. Nothing is kept between scrapes except the OOM kill tally, whose
entry goes with its container's `destroy` event: the series are the containers that exist at
the scrape, so created-and-removed containers leave none behind.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from engine.containers.state import Status
from engine.containers.store import Container, ContainerStore
from engine.events import CONTAINER, Event
from runtime import client as rt
from runtime.client.records import Metrics

# Runtime requests in flight at once during a scrape: a thousand running containers must not mean a
# thousand simultaneous requests.
_CONCURRENCY = 16
_HEALTH_STATES = ("starting", "healthy", "unhealthy")
_LABELS = ["id", "name"]


@dataclass(frozen=True)
class NetDev:
    interface: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


@dataclass
class _Row:
    id: str
    name: str
    status: str
    restart_count: int
    health: str | None
    oom_kills: int
    metrics: Metrics | None = None
    net: list[NetDev] = field(default_factory=list)


def parse_net_dev(text: str) -> list[NetDev]:
    """/proc/<pid>/net/dev: two header lines, then `iface: rx(8 fields) tx(8 fields)`; loopback left out."""
    out = []
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        f = counters.split()
        if name.strip() == "lo" or len(f) < 16:
            continue
        out.append(NetDev(name.strip(), int(f[0]), int(f[1]), int(f[2]), int(f[3]),
                          int(f[8]), int(f[9]), int(f[10]), int(f[11])))
    return out


def _own_netns(pid: int, host_netns: int) -> list[NetDev]:
    """The interfaces of the process's network namespace; none when it shares the host's (--network host)."""
    try:
        if os.stat(f"/proc/{pid}/ns/net").st_ino == host_netns:
            return []
        with open(f"/proc/{pid}/net/dev", encoding="ascii") as fh:
            return parse_net_dev(fh.read())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []  # exited between the record and the read


def _read_networks(pids: dict[str, int]) -> dict[str, list[NetDev]]:
    host_netns = os.stat("/proc/self/ns/net").st_ino
    return {cid: _own_netns(pid, host_netns) for cid, pid in pids.items()}


class ContainerCollector(Collector):
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore) -> None:
        self._rt = runtime
        self._store = store
        self._rows: list[_Row] = []
        self._oom_kills: Counter[str] = Counter()

    def observe(self, ev: Event) -> None:
        """Fed every engine event: counts OOM kills, forgets a container's count when it is destroyed."""
        if ev.type != CONTAINER:
            return
        if ev.action == "oom":
            self._oom_kills[ev.actor_id] += 1
        elif ev.action == "destroy":
            self._oom_kills.pop(ev.actor_id, None)

    async def refresh(self) -> None:
        containers = self._store.all()
        rows = {c.id: self._row(c) for c in containers}
        running = [c for c in containers if c.state.running and c.state.pid > 0]
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def sample(cid: str) -> None:
            async with gate:
                with contextlib.suppress(rt.RuntimeError_):
                    rows[cid].metrics = await self._rt.task_metrics(cid)

        await asyncio.gather(*(sample(c.id) for c in running))
        networks = await asyncio.to_thread(_read_networks, {c.id: c.state.pid for c in running})
        for cid, devices in networks.items():
            rows[cid].net = devices
        self._rows = list(rows.values())

    def _row(self, c: Container) -> _Row:
        health = c.health.Status if c.health is not None and c.state.running else None
        return _Row(c.id, c.name, c.state.status.value, c.restart_count, health, self._oom_kills.get(c.id, 0))

    def collect(self) -> Iterator[Metric]:
        rows = self._rows
        states = GaugeMetricFamily("pyengine_containers", "Containers by state.", labels=["state"])
        by_state = Counter(r.status for r in rows)
        for status in Status:
            states.add_metric([status.value], by_state.get(status.value, 0))
        yield states
        yield from _records(rows)
        yield from _cgroups(rows)
        yield from _networks(rows)


def _records(rows: list[_Row]) -> Iterable[Metric]:
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


def _cgroups(rows: list[_Row]) -> Iterable[Metric]:
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


def _networks(rows: list[_Row]) -> Iterable[Metric]:
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
