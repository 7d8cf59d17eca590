"""A container's metrics as read from cgroup v1 and v2 files, on fake cgroup trees."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.tasks import cgroups


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture
def v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    layout = (cgroups.CgroupMode.HYBRID, [
        cgroups._Hierarchy(str(tmp_path / "cpu,cpuacct"), frozenset({"cpu", "cpuacct"})),
        cgroups._Hierarchy(str(tmp_path / "memory"), frozenset({"memory"})),
        cgroups._Hierarchy(str(tmp_path / "blkio"), frozenset({"blkio"})),
    ])
    monkeypatch.setattr(cgroups, "_layout", lambda: layout)
    return tmp_path


def test_v1_cpu_memory_and_throttled_blkio(v1: Path) -> None:
    hz = os.sysconf("SC_CLK_TCK")
    _tree(v1, {
        "cpu,cpuacct/c/cpuacct.usage": "300\n", "cpu,cpuacct/c/cpuacct.usage_percpu": "100 200 \n",
        "cpu,cpuacct/c/cpuacct.stat": f"user {3 * hz}\nsystem {hz}\n",
        "cpu,cpuacct/c/cpu.stat": "nr_periods 7\nnr_throttled 2\nthrottled_time 999\nnr_bursts 0\n",
        "memory/c/memory.usage_in_bytes": "4096\n", "memory/c/memory.max_usage_in_bytes": "8192\n",
        "memory/c/memory.limit_in_bytes": "9223372036854771712\n", "memory/c/memory.failcnt": "3\n",
        "memory/c/memory.stat": "cache 1\nshmem 5\ntotal_inactive_file 2\nhierarchical_memory_limit 9\n",
        # No CFQ here: blkio.io_serviced_recursive is missing, the throttle counters count.
        "blkio/c/blkio.throttle.io_service_bytes_recursive": "8:0 Read 10\n8:0 Write 20\n8:0 Total 30\nTotal 30\n",
        "blkio/c/blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
    })
    m = cgroups.read_metrics("/c")
    assert (m.cpu_usage_ns, m.cpu_percpu_ns, m.cpu_user_ns, m.cpu_system_ns) == (300, [100, 200], 3 * 10**9, 10**9)
    assert (m.cpu_periods, m.cpu_throttled_periods, m.cpu_throttled_ns) == (7, 2, 999)
    assert (m.memory_usage, m.memory_max_usage, m.memory_limit, m.memory_failcnt) == (4096, 8192, None, 3)
    # dockerd's map: the kernel's counters it knows of, not newer ones such as shmem.
    assert m.memory_stat == {"cache": 1, "total_inactive_file": 2, "hierarchical_memory_limit": 9}
    assert m.memory_inactive_file == 2
    assert [(e.major, e.minor, e.op, e.value) for e in m.blkio["io_service_bytes_recursive"]] == [
        (8, 0, "Read", 10), (8, 0, "Write", 20), (8, 0, "Total", 30)]
    assert len(m.blkio["io_serviced_recursive"]) == 2 and m.blkio["sectors_recursive"] == []
    assert (m.io_read_bytes, m.io_write_bytes) == (10, 20)


def test_v1_cfq_counters_when_they_count(v1: Path) -> None:
    _tree(v1, {"blkio/c/blkio.io_serviced_recursive": "8:0 Read 4\n",
               "blkio/c/blkio.io_service_bytes_recursive": "8:0 Read 40\n",
               "blkio/c/blkio.sectors_recursive": "8:0 8\n",
               "blkio/c/blkio.throttle.io_service_bytes_recursive": "8:0 Read 99\n"})
    m = cgroups.read_metrics("/c")
    assert m.io_read_bytes == 40 and m.blkio["io_serviced_recursive"][0].value == 4


def test_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "_layout", lambda: (cgroups.CgroupMode.UNIFIED,
                                                     [cgroups._Hierarchy(str(tmp_path), frozenset())]))
    _tree(tmp_path, {
        "c/cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
        "c/memory.current": "100\n", "c/memory.max": "max\n",
        "c/memory.stat": "anon 1\nfile 2\ninactive_file 3\nzswap 4\n",
        "c/io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
    })
    m = cgroups.read_metrics("/c")
    assert (m.cpu_usage_ns, m.cpu_user_ns, m.cpu_system_ns, m.cpu_percpu_ns) == (5000, 3000, 2000, None)
    assert (m.cpu_periods, m.cpu_throttled_periods, m.cpu_throttled_ns) == (4, 1, 7000)
    assert m.memory_limit is None and m.memory_stat == {"anon": 1, "file": 2, "inactive_file": 3}
    assert [(e.op, e.value) for e in m.blkio["io_service_bytes_recursive"]] == [("read", 10), ("write", 20)]
    assert list(m.blkio) == ["io_service_bytes_recursive"] and (m.io_read_bytes, m.io_write_bytes) == (10, 20)
