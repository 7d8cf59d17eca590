"""Per-container metrics, read when Prometheus scrapes and at no other time.

`refresh()` (async, before each scrape) asks the runtime for each running container's cgroup
numbers (the same `task_metrics` that `docker stats` reads) and reads the network counters of
its namespace from /proc into `rows`, which engine/metrics/exposition.py turns into metric
families. Nothing is kept between scrapes except the OOM kill tally, whose
entry goes with its container's `destroy` event: the series are the containers that exist at
the scrape, so created-and-removed containers leave none behind.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from dataclasses import dataclass, field

from engine.containers.store import Container, ContainerStore
from engine.events import CONTAINER, Event
from runtime import client as rt
from runtime.client.records import Metrics

# Runtime requests in flight at once during a scrape: a thousand running containers must not mean a
# thousand simultaneous requests.
_CONCURRENCY = 16


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
class Row:
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


class ContainerSampler:
    def __init__(self, runtime: rt.RuntimeAPI, store: ContainerStore) -> None:
        self._rt = runtime
        self._store = store
        self.rows: list[Row] = []
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
        self.rows = list(rows.values())

    def _row(self, c: Container) -> Row:
        health = c.health.Status if c.health is not None and c.state.running else None
        return Row(c.id, c.name, c.state.status.value, c.restart_count, health, self._oom_kills.get(c.id, 0))
