"""docker update through pyengined: limits reach the live cgroup, inspect, the next start; errors as dockerd's."""
from __future__ import annotations

import json
import os
import time

from runtime import sysinfo
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

# The containers module's engine (busybox pulled) and its clean-up between tests.
engine, no_leftovers = containers.engine, containers.no_leftovers

MIB = 1024 * 1024
_V2 = not os.path.isdir("/sys/fs/cgroup/memory")

# What the container sees of its own cgroup: memory limit, pids limit, cpu quota and period.
LIMITS = ("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; cat /sys/fs/cgroup/cpu.max" if _V2 else
          "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
          "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")


def limits(engine, name: str) -> list[str]:
    return ok(engine, "exec", name, "sh", "-c", LIMITS).split()


def frozen(pid: int) -> bool:
    """Whether the cgroup freezer holds the process (v1 freezer.state, v2 cgroup.freeze)."""
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "freezer":
            return open(f"/sys/fs/cgroup/freezer{path}/freezer.state").read().strip() == "FROZEN"
        if controllers == "" and _V2:
            return open(f"/sys/fs/cgroup{path}/cgroup.freeze").read().strip() == "1"
    raise AssertionError(f"no freezer cgroup for pid {pid}")


def host_config(engine, name: str) -> dict:
    return json.loads(ok(engine, "inspect", name))[0]["HostConfig"]


def test_update_of_a_running_container_is_live_and_kept_across_restarts(engine):
    ok(engine, "run", "-d", "--name", "up1", "busybox", "sleep", "1000")
    before = limits(engine, "up1")
    assert before[1] == "max"
    t0 = time.time()
    # Made without a memory limit: a new one comes with a swap limit, or dockerd refuses it (below).
    assert ok(engine, "update", "--memory", "64m", "--memory-swap", "256m", "--cpus", "0.5", "--pids-limit", "50",
              "up1") == "up1\n"
    assert limits(engine, "up1") == [str(64 * MIB), "50", "50000", "100000"]
    hc = host_config(engine, "up1")
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (64 * MIB, 500_000_000, 50)

    # Only what is given changes.
    ok(engine, "update", "--memory", "128m", "up1")
    assert limits(engine, "up1") == [str(128 * MIB), "50", "50000", "100000"]
    # The next run starts with the updated limits (the runtime's stored spec has them).
    ok(engine, "restart", "-t", "0", "up1")
    assert limits(engine, "up1") == [str(128 * MIB), "50", "50000", "100000"]
    ok(engine, "update", "--pids-limit", "-1", "up1")
    assert limits(engine, "up1")[1] == "max"
    assert json.loads(ok(engine, "inspect", "up1"))[0]["HostConfig"]["PidsLimit"] == 0  # dockerd's "unlimited"
    # runc keeps a paused container frozen through an update.
    ok(engine, "pause", "up1")
    ok(engine, "update", "--memory", "96m", "up1")
    assert frozen(json.loads(ok(engine, "inspect", "up1"))[0]["State"]["Pid"])
    ok(engine, "unpause", "up1")
    assert limits(engine, "up1")[0] == str(96 * MIB)

    evs = ok(engine, "events", "--since", f"{t0:.9f}", "--until", f"{time.time():.9f}", "--filter", "event=update",
             "--format", "{{.Actor.Attributes.name}}").split()
    assert evs == ["up1"] * 4


def test_update_of_a_stopped_container_applies_at_start(engine):
    ok(engine, "create", "--name", "up2", "busybox", "sleep", "1000")
    ok(engine, "update", "--memory", "32m", "--memory-swap", "64m", "--cpu-quota", "20000", "--cpu-period", "40000",
       "up2")
    ok(engine, "start", "up2")
    assert limits(engine, "up2")[0] == str(32 * MIB)
    assert limits(engine, "up2")[2:] == ["20000", "40000"]


def test_restart_policy_update_shows_in_inspect(engine):
    ok(engine, "create", "--name", "up3", "busybox", "true")
    ok(engine, "update", "--restart", "on-failure:3", "up3")
    assert host_config(engine, "up3")["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    ok(engine, "update", "--restart", "always", "up3")
    assert host_config(engine, "up3")["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    out = cli(engine, "update", "--restart", "sometimes", "up3")
    assert out.returncode == 1 and "invalid restart policy 'sometimes'" in out.stderr

    ok(engine, "create", "--rm", "--name", "up4", "busybox", "true")
    out = cli(engine, "update", "--restart", "always", "up4")
    assert out.returncode == 1 and "AutoRemove is enabled" in out.stderr


def test_errors(engine, sdk):
    out = cli(engine, "update", "--memory", "64m", "nope")
    assert out.returncode == 1 and "No such container: nope" in out.stderr
    status, ctype, body = curl(engine, "POST", "/v1.41/containers/nope/update", '{"Memory": 67108864}')
    assert (status, ctype, json.loads(body)) == (404, "application/json", {"message": "No such container: nope"})

    ok(engine, "run", "-d", "--name", "bad", "busybox", "sleep", "1000")
    out = cli(engine, "update", "--memory", "1m", "bad")
    assert out.returncode == 1 and "Minimum memory limit allowed is 6MB" in out.stderr
    status, _, body = curl(engine, "POST", "/v1.41/containers/bad/update", '{"Memory": 1048576}')
    assert (status, json.loads(body)) == (400, {"message": "Minimum memory limit allowed is 6MB"})
    out = cli(engine, "update", "--memory", "64m", "bad")
    assert out.returncode == 1 and ("Memory limit should be smaller than already set memoryswap limit, update the "
                                    "memoryswap at the same time") in out.stderr
    out = cli(engine, "update", "--cpus", "99", "bad")
    assert out.returncode == 1 and "Range of CPUs is from 0.01" in out.stderr
    # Only the host can tell which CPUs exist: the runtime's check, still a 400.
    status, _, body = curl(engine, "POST", "/v1.41/containers/bad/update", '{"CpusetCpus": "63"}')
    assert status == 400 and "not available" in json.loads(body)["message"]
    status, _, _ = curl(engine, "POST", "/v1.41/containers/bad/update", '{"Memory": "lots"}')
    assert status == 400
    # Nothing of the refused updates stuck.
    hc = host_config(engine, "bad")
    assert (hc["Memory"], hc["NanoCpus"], hc["CpusetCpus"]) == (0, 0, "")

    ok(engine, "update", "--cpus", "1", "bad")
    out = cli(engine, "update", "--cpu-quota", "30000", "bad")
    assert out.returncode == 1 and "NanoCPUs has already been set" in out.stderr

    # Whether the kernel can weigh block I/O is the host's (dockerd's /info warns of it on cgroup v2 only).
    weighs = sysinfo.probe().blkio_weight
    status, _, body = curl(engine, "POST", "/v1.41/containers/bad/update", '{"BlkioWeight": 300, "KernelMemory": 9}')
    ignored = "Specifying a kernel memory limit is deprecated and will be removed in a future release."
    discarded = "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
    assert (status, json.loads(body)) == (200, {"Warnings": [ignored] if weighs else [discarded, ignored]})
    assert host_config(engine, "bad")["BlkioWeight"] == (300 if weighs else 0)
    resp = sdk.api.update_container("bad", mem_limit="48m", memswap_limit="96m", mem_reservation="24m")
    assert resp == {"Warnings": None}
    assert host_config(engine, "bad")["MemoryReservation"] == 24 * MIB
    assert limits(engine, "bad")[0] == str(48 * MIB)
