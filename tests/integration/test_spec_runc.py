"""Generated specs run under the real runc: what a process inside sees proves the spec.

Each container gets a unique id, its own `runc --root` and a cgroup parent private to
this module, all removed afterwards.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.tasks import cgroups
from runtime.tasks.spec import generate
from runtime.tasks.users import resolve_user
from runtime.tasks.spec_options import SpecMount, SpecOptions, Ulimit
from runtime.tasks.spec_security import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    host_capabilities,
)

RUNC = shutil.which("runc")
BUSYBOX = shutil.which("busybox")
APPLETS = ("sh", "cat", "id", "hostname", "grep", "touch", "echo", "ls", "mkdir", "sleep", "dd", "pwd", "env",
           "head", "wc", "true")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runc needs root"),
    pytest.mark.skipif(RUNC is None or BUSYBOX is None, reason="needs runc and busybox"),
    pytest.mark.timeout(60),
]


def _static(path: str) -> bool:
    out = subprocess.run(["ldd", path], capture_output=True, text=True)
    return out.returncode != 0 or "not a dynamic executable" in out.stdout + out.stderr


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert BUSYBOX is not None
    if not _static(BUSYBOX):
        pytest.skip("busybox is dynamically linked: it would need its libraries in the rootfs")
    root = tmp_path_factory.mktemp("spec-rootfs") / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        (root / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n")
    return root


@pytest.fixture(scope="module")
def cgroup_parent() -> Iterator[str]:
    parent = f"/pyengine-spec-test-{uuid.uuid4().hex[:8]}"
    yield parent
    cgroups.remove_cgroup(parent)


class Runc:
    def __init__(self, tmp: Path, rootfs: Path, parent: str) -> None:
        self.tmp, self.rootfs, self.parent = tmp, rootfs, parent
        self.root = tmp / "runc-root"
        self.started: list[tuple[str, str]] = []  # (id, cgroupsPath)

    def _cmd(self, *args: str) -> list[str]:
        assert RUNC is not None
        return [RUNC, "--root", str(self.root), *args]

    def bundle(self, args: list[str], **opts: Any) -> tuple[str, Path, dict[str, Any]]:
        cid = f"pyspec-{uuid.uuid4().hex[:10]}"
        opts.setdefault("hostname", cid)  # pyctr passes the full id
        opts.setdefault("cgroup_parent", self.parent)
        options = SpecOptions(args=args, **opts)
        user = resolve_user(str(self.rootfs), options.user, options.additional_gids)
        spec = generate(user, cid, "spec-test", options)
        spec["root"]["path"] = str(self.rootfs)  # one rootfs shared by the tests' bundles
        bundle = self.tmp / cid
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(spec))
        self.started.append((cid, spec["linux"]["cgroupsPath"]))
        return cid, bundle, spec

    def run(self, script: str, **opts: Any) -> subprocess.CompletedProcess[str]:
        """Run `sh -c script` to completion, in the foreground, no terminal."""
        cid, bundle, _ = self.bundle(["sh", "-c", script], **opts)
        return subprocess.run(self._cmd("run", "--bundle", str(bundle), cid), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=20)

    def start_detached(self, args: list[str], **opts: Any) -> tuple[str, str]:
        cid, bundle, spec = self.bundle(args, **opts)
        # The container inherits runc's stdio; a pipe would keep us waiting for it to exit.
        with open(bundle / "runc.log", "w") as log:
            proc = subprocess.run(self._cmd("run", "--detach", "--bundle", str(bundle), cid),
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=20)
        assert proc.returncode == 0, (bundle / "runc.log").read_text()
        return cid, spec["linux"]["cgroupsPath"]

    def status(self, cid: str) -> str:
        out = subprocess.run(self._cmd("state", cid), capture_output=True, text=True, timeout=10, check=True)
        return json.loads(out.stdout)["status"]

    def wait_stopped(self, cid: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.status(cid) != "stopped":
            assert time.monotonic() < deadline, f"{cid} still running"
            time.sleep(0.05)

    def cleanup(self) -> None:
        for cid, path in self.started:
            subprocess.run(self._cmd("delete", "--force", cid), capture_output=True, timeout=20)
            cgroups.remove_cgroup(path)


@pytest.fixture
def runc(tmp_path: Path, rootfs: Path, cgroup_parent: str) -> Iterator[Runc]:
    r = Runc(tmp_path, rootfs, cgroup_parent)
    try:
        yield r
    finally:
        r.cleanup()


def lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """`key=value` lines the scripts print, after checking runc itself succeeded."""
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def cap_mask(caps: list[str] | tuple[str, ...]) -> str:
    return f"{sum(1 << CAPABILITIES.index(c) for c in caps):016x}"


def test_default_container(runc: Runc) -> None:
    out = lines(runc.run(
        "echo host=$(hostname); echo capeff=$(grep CapEff /proc/self/status); "
        "echo seccomp=$(grep '^Seccomp:' /proc/self/status); "
        "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); echo keys=$(cat /proc/keys | wc -c); "
        "echo timers=$(cat /proc/timer_list | wc -c); "
        "echo sysrw=$(echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo yes || echo no); "
        "echo uid=$(id -u); echo groups=\"$(id -G)\"; echo nofile=$(ulimit -n); echo pwd=$(pwd); "
        "echo mkdir=$(mkdir /tmp/d && echo ok); echo shm=$(touch /dev/shm/x && echo ok)",
    ))
    cid = runc.started[-1][0]
    assert out["host"] == cid
    assert out["capeff"].split()[-1] == cap_mask(DEFAULT_CAPABILITIES) == "00000000a80425fb"
    assert out["seccomp"].split()[-1] == "2"  # a filter is installed
    assert out["kcore"] == "0" and out["keys"] == "0" and out["timers"] == "0"
    assert out["sysrw"] == "no"
    assert out["uid"] == "0" and out["groups"] == "0 10"
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert out["nofile"] == str(1048576 if host_hard == resource.RLIM_INFINITY else min(1048576, host_hard))
    assert out["pwd"] == "/" and out["mkdir"] == "ok" and out["shm"] == "ok"


def test_memory_and_pids_limits_are_visible(runc: Runc) -> None:
    if cgroups.detect_mode() is cgroups.CgroupMode.UNIFIED:
        script = "echo mem=$(cat /sys/fs/cgroup/memory.max); echo pids=$(cat /sys/fs/cgroup/pids.max)"
    else:
        script = ("echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); "
                  "echo pids=$(cat /sys/fs/cgroup/pids/pids.max)")
    out = lines(runc.run(script, memory=64 * 1024 * 1024, pids_limit=37))
    assert out == {"mem": str(64 * 1024 * 1024), "pids": "37"}


def test_metrics_of_a_running_container(runc: Runc) -> None:
    cid, path = runc.start_detached(["sleep", "30"], memory=64 * 1024 * 1024, pids_limit=20)
    assert runc.status(cid) == "running"
    assert all(os.path.isdir(d) for d in cgroups.cgroup_dirs(path))
    m = cgroups.read_metrics(path)
    assert m.memory_limit == 64 * 1024 * 1024 and m.memory_usage is not None and m.memory_usage > 0
    assert m.pids_current == 1 and m.pids_limit == 20
    assert m.cpu_usage_ns is not None and m.cpu_usage_ns > 0
    assert not cgroups.oom_killed(path)
    subprocess.run(runc._cmd("delete", "--force", cid), check=True, capture_output=True, timeout=20)
    cgroups.remove_cgroup(path)
    assert not any(os.path.exists(d) for d in cgroups.cgroup_dirs(path))
    cgroups.remove_cgroup(path)  # already gone: fine


def test_oom_kill_is_reported(runc: Runc) -> None:
    limit = 16 * 1024 * 1024
    # dd's 64 MiB buffer cannot fit: the kernel kills it (no swap to spill into).
    cid, path = runc.start_detached(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                                    memory=limit, memory_swap=limit)
    runc.wait_stopped(cid)
    assert cgroups.oom_killed(path)


def test_user_nobody(runc: Runc) -> None:
    out = lines(runc.run("echo uid=$(id -u); echo gid=$(id -g); echo cap=$(grep CapEff /proc/self/status)",
                         user="nobody"))
    assert out["uid"] == "65534" and out["gid"] == "65534"
    assert out["cap"].split()[-1] == "0000000000000000"  # exec as non-root drops them, as in Docker


def test_readonly_rootfs_and_user_mounts(runc: Runc, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "greeting").write_text("hi\n")
    out = lines(runc.run(
        "touch /x 2>/dev/null && echo root=rw || echo root=ro; touch /dev/shm/y && echo shm=rw; "
        "echo data=$(cat /data/greeting); touch /data/z 2>/dev/null && echo data_w=rw || echo data_w=ro; "
        "touch /scratch/z && echo scratch=rw",
        readonly_rootfs=True, mounts=[SpecMount(source=str(data), destination="/data", options=["ro"])],
        tmpfs={"/scratch": "size=1m"},
    ))
    assert out == {"root": "ro", "shm": "rw", "data": "hi", "data_w": "ro", "scratch": "rw"}
    assert not (data / "z").exists()


def test_custom_seccomp_profile_is_enforced(runc: Runc, tmp_path: Path) -> None:
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    out = lines(runc.run("mkdir /tmp/d 2>/dev/null && echo mkdir=ok || echo mkdir=denied; echo still=$(echo up)",
                         seccomp=str(profile)))
    assert out == {"mkdir": "denied", "still": "up"}


def test_privileged(runc: Runc) -> None:
    # A host device runc would not create by itself.
    host_dev = next((f"/dev/{n}" for n in ("kmsg", "loop-control", "vda", "sda", "mem")
                     if os.path.exists(f"/dev/{n}")), None)
    out = lines(runc.run("echo cap=$(grep CapEff /proc/self/status); "
                         "echo seccomp=$(grep '^Seccomp:' /proc/self/status); "
                         f"echo sys=$(grep ' /sys ' /proc/mounts); echo dev=$(ls {host_dev or '/dev/null'})",
                         privileged=True))
    assert out["cap"].split()[-1] == cap_mask(host_capabilities())
    assert out["seccomp"].split()[-1] == "0"
    assert out["sys"].split()[3].startswith("rw,")
    assert out["dev"] == (host_dev or "/dev/null")


def test_caps_ulimits_oom_and_env(runc: Runc) -> None:
    out = lines(runc.run(
        "echo cap=$(grep CapEff /proc/self/status); echo soft=$(ulimit -n); echo hard=$(ulimit -Hn); "
        "echo oom=$(cat /proc/self/oom_score_adj); echo greeting=$GREETING; echo pwd=$(pwd); "
        "echo nnp=$(grep NoNewPrivs /proc/self/status)",
        cap_drop=["ALL"], cap_add=["net_bind_service"], ulimits=[Ulimit(name="nofile", soft=256, hard=512)],
        oom_score_adj=500, env=["GREETING=hello"], cwd="/tmp", no_new_privileges=True,
    ))
    assert out["cap"].split()[-1] == cap_mask(["CAP_NET_BIND_SERVICE"])
    assert (out["soft"], out["hard"]) == ("256", "512")
    assert out["oom"] == "500" and out["greeting"] == "hello" and out["pwd"] == "/tmp"
    assert out["nnp"].split()[-1] == "1"
