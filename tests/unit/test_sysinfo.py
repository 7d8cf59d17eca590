"""The host probe reads what each controller's hierarchy offers, as dockerd's sysinfo does."""
from __future__ import annotations

from pathlib import Path

from runtime import sysinfo


def _hierarchy(root: Path, name: str, *files: str) -> str:
    d = root / name
    d.mkdir()
    for f in files:
        (d / f).write_text("")
    return str(d)


def test_v1_without_bfq_has_no_blkio_weight(tmp_path: Path) -> None:
    roots = {
        "memory": _hierarchy(tmp_path, "memory", "memory.limit_in_bytes", "memory.soft_limit_in_bytes"),
        "cpu": _hierarchy(tmp_path, "cpu", "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"),
        "blkio": _hierarchy(tmp_path, "blkio", "blkio.throttle.read_bps_device"),
        "pids": _hierarchy(tmp_path, "pids"),
    }
    found = sysinfo._v1(roots)
    assert found["memory_limit"] and found["memory_reservation"] and not found["swap_limit"]
    assert found["cpu_shares"] and found["cpu_cfs"] and not found["cpu_realtime"]
    assert found["blkio_read_bps_device"] and not found["blkio_weight"] and not found["blkio_weight_device"]
    assert found["pids_limit"] and not found["cpuset"]


def test_v2_reads_the_root_controllers(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu memory pids\n")
    found = sysinfo._v2(str(tmp_path))
    assert found["memory_limit"] and found["cpu_cfs"] and found["cpuset"] and found["pids_limit"]
    assert not found["blkio_weight"]


def test_this_host_is_probed_once() -> None:
    first = sysinfo.probe()
    assert first is sysinfo.probe() and first.cgroup_version in ("1", "2")
