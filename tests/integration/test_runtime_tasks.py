"""Issue 3 acceptance: containers and tasks through pyctr and the runtime API."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runtime.client import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tests.integration.helpers import BIN, PtyProcess, pyctr

CAP_DEFAULT = 0x00000000A80425FB  # Docker's default capability set


@pytest.fixture
def busybox(runtime_daemon, registry, pyctr_env):
    ref = f"{registry.host}/library/busybox:latest"
    pyctr(pyctr_env, "images", "pull", ref, check=True)
    return ref


def _leftovers(d, cid: str) -> list[str]:
    found = []
    base = d.base.rstrip("/")
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mp = line.split()[4]
            if mp.startswith(base + "/") and "/tasks/" in mp:
                found.append(f"mount {mp}")
    for ctrl in ("memory", "pids", "cpu"):
        p = Path(f"/sys/fs/cgroup/{ctrl}{d.cgroup_root}/default/{cid}")
        if p.exists():
            found.append(f"cgroup {p}")
    runc_root = Path(d.state) / "runc" / "runc" / cid
    if runc_root.exists():
        found.append(f"runc state {runc_root}")
    out = subprocess.run(["pgrep", "-f", f"conmon.*-c {cid} "], capture_output=True, text=True).stdout.split()
    found += [f"conmon pid {p}" for p in out]
    if (Path(d.state) / "tasks" / "default" / cid).exists():
        found.append("task dir")
    return found


def _snapshot_keys(env) -> list[str]:
    out = pyctr(env, "snapshots", "ls", check=True).stdout.splitlines()[1:]
    return [line.split()[0] for line in out if line.strip()]


def test_run_rm_streams_and_exit_code(runtime_daemon, pyctr_env, busybox):
    p = pyctr(pyctr_env, "run", "--rm", busybox, "t1", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert p.returncode == 7, p.stderr
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"
    assert _leftovers(runtime_daemon, "t1") == []
    assert "t1" not in _snapshot_keys(pyctr_env)
    assert pyctr(pyctr_env, "containers", "ls", "-q", check=True).stdout.strip() == ""


def test_run_without_args_runs_the_images_cmd(runtime_daemon, pyctr_env, busybox):
    """pyctr fills the process in from the image's config (the runtime takes it as given): Cmd is `sh`."""
    async def config():
        async with runtime_daemon.client() as c:
            return await c.image_config(busybox)

    assert asyncio.run(config())["config"]["Cmd"] == ["sh"]
    p = subprocess.run([str(BIN / "pyctr"), "run", "--rm", "--env", "GREETING=hi", "--cwd", "/tmp", busybox, "t0"],
                       env=pyctr_env, input='echo "$GREETING $HOME $(pwd)"; exit 4\n', capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 4, p.stderr
    assert p.stdout == "hi /root /tmp\n"
    assert _leftovers(runtime_daemon, "t0") == []


def test_detached_exec_kill_delete(runtime_daemon, pyctr_env, busybox):
    pyctr(pyctr_env, "run", "-d", busybox, "t2", "sleep", "1000", check=True)
    ls = pyctr(pyctr_env, "tasks", "ls", check=True).stdout
    assert any(line.split()[0] == "t2" and line.split()[2] == "RUNNING" for line in ls.splitlines()[1:]), ls
    e = pyctr(pyctr_env, "tasks", "exec", "--exec-id", "e1", "t2", "cat", "/etc/hostname")
    assert e.returncode == 0, e.stderr
    assert e.stdout.strip() == "t2"
    pyctr(pyctr_env, "tasks", "kill", "t2", check=True)

    async def wait():
        async with runtime_daemon.client() as c:
            return await asyncio.wait_for(c.wait_task("t2"), 10)

    assert asyncio.run(wait()).exit_status == 143
    pyctr(pyctr_env, "tasks", "delete", "t2", check=True)
    pyctr(pyctr_env, "containers", "rm", "t2", check=True)
    assert _leftovers(runtime_daemon, "t2") == []


def test_tty_is_interactive(runtime_daemon, pyctr_env, busybox):
    p = PtyProcess([str(BIN / "pyctr"), "run", "--rm", "-t", busybox, "t3", "sh"], pyctr_env)
    p.read_until(b"#")
    p.write(b"echo $((6*7))\r")
    p.read_until(b"42")
    p.write(b"exit 3\r")
    assert p.wait() == 3


def test_twenty_concurrent_runs(runtime_daemon, pyctr_env, busybox):
    procs = [subprocess.Popen([str(BIN / "pyctr"), "run", "--rm", busybox, f"c{i}", "echo", f"hello {i}"],
                              env=pyctr_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(20)]
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out == f"hello {i}\n"
    for i in range(20):
        assert _leftovers(runtime_daemon, f"c{i}") == []
    assert pyctr(pyctr_env, "tasks", "ls", check=True).stdout.strip().splitlines()[1:] == []


def test_restart_recovers_tasks_and_exits(runtime_daemon, pyctr_env, busybox):
    for cid in ("r1", "r2"):
        pyctr(pyctr_env, "run", "-d", busybox, cid, "sleep", "1000", check=True)
    pyctr(pyctr_env, "run", "-d", busybox, "r3", "sh", "-c", "sleep 2; exit 5", check=True)

    async def pids():
        async with runtime_daemon.client() as c:
            return {t.id: t.pid for t in await c.tasks()}

    before = asyncio.run(pids())
    runtime_daemon.kill9()
    time.sleep(3)

    runtime_daemon.start()

    async def after():
        async with runtime_daemon.client() as c:
            events = c.events(topics=["/tasks/exit"], announce=True)
            await events.__anext__()
            tasks = {t.id: t for t in await c.tasks()}
            status = await asyncio.wait_for(c.wait_task("r3"), 5)
            return tasks, status

    tasks, status = asyncio.run(after())
    assert tasks["r1"].status == "running" and tasks["r1"].pid == before["r1"]
    assert tasks["r2"].status == "running" and tasks["r2"].pid == before["r2"]
    assert tasks["r3"].status == "stopped" and tasks["r3"].exit_status == 5
    assert status.exit_status == 5
    assert "/tasks/exit" in runtime_daemon.log() and "exit_status=5" in runtime_daemon.log()
    for cid in ("r1", "r2", "r3"):
        pyctr(pyctr_env, "tasks", "delete", "-f", cid, check=True)
        pyctr(pyctr_env, "containers", "rm", cid, check=True)


def test_container_security_and_limits(runtime_daemon, pyctr_env, busybox):
    script = ("grep CapEff /proc/self/status; hostname; cat /proc/keys | wc -c; "
              "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/pids/pids.max")
    p = pyctr(pyctr_env, "run", "--rm", "--memory-limit", str(64 * 1024 * 1024), "--pids-limit", "50",
              busybox, "sec1", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert int(lines[1], 16) == CAP_DEFAULT
    assert lines[2] == "sec1"
    assert lines[3] == "0"  # masked
    assert int(lines[4]) == 64 * 1024 * 1024
    assert lines[5] == "50"


def test_bad_input_typed_errors(runtime_daemon, busybox):
    async def go():
        async with runtime_daemon.client() as c:
            with pytest.raises(NotFound):
                await c.create_container("x1", "127.0.0.1:1/nope:latest", {"args": ["true"]})
            with pytest.raises(NotFound):
                await c.image_config("127.0.0.1:1/nope:latest")
            await c.create_container("dup", busybox, {"args": ["sleep", "100"]}, init=True)
            with pytest.raises(AlreadyExists):
                await c.create_container("dup", busybox, {"args": ["true"]})
            with pytest.raises(InvalidArgument, match="container id"):
                await c.create_container("bad/id", busybox, {"args": ["true"]})
            # The runtime never falls back on the image's Cmd: no args, no container.
            with pytest.raises(InvalidArgument, match="^no command specified$"):
                await c.create_container("noargs", busybox)
            with pytest.raises(InvalidArgument, match="entrypoint"):
                await c.create_container("entry", busybox, {"args": ["true"], "entrypoint": ["sh"]})
            with pytest.raises(NotFound):
                await c.start_task("ghost")
            await c.create_task("dup")
            with pytest.raises(FailedPrecondition):
                await c.add_exec("dup", "e1", ["true"])  # created, not running
            await c.start_task("dup")
            with pytest.raises(InvalidArgument, match="^Invalid signal: SIGNOPE$"):
                await c.kill_task("dup", "SIGNOPE")
            with pytest.raises(InvalidArgument, match="^Invalid signal: ²$"):
                await c.kill_task("dup", "²")
            await c.kill_task("dup", "SIGKILL")
            await c.wait_task("dup")
            with pytest.raises(FailedPrecondition):
                await c.add_exec("dup", "e2", ["true"])
            with pytest.raises(FailedPrecondition):
                await c.remove_container("dup")
            await c.delete_task("dup")
            await c.remove_container("dup")
            assert await c.containers() == [] and await c.tasks() == []

    asyncio.run(go())


def test_a_create_time_mount_left_by_a_kill_is_swept_at_start(runtime_daemon):
    # A runtime killed while a container's rootfs was mounted for its create-time checks.
    leftover = Path(runtime_daemon.root, "tmp", "create", "pyengine-mount-killed")
    runtime_daemon.stop()
    leftover.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(leftover)], check=True)
    runtime_daemon.start()
    assert str(leftover) not in Path("/proc/mounts").read_text()
    assert not leftover.exists()


def test_a_runs_own_env_reaches_its_process_and_execs(runtime_daemon, busybox):
    async def go():
        async with runtime_daemon.client() as c:
            await c.create_container("envs", busybox, {"args": ["sleep", "100"], "env": ["A=own"]})
            await c.create_task("envs", env=["A=run", "B=run", "bare"])
            bundle = Path(runtime_daemon.state) / "tasks" / "default" / "envs" / "config.json"
            env = json.loads(bundle.read_text())["process"]["env"]
            assert "A=own" in env and "B=run" in env and "A=run" not in env and "bare" not in env
            await c.start_task("envs")
            exec_env = (await c.add_exec("envs", "e1", ["true"])).process["env"]
            assert "A=own" in exec_env and "B=run" in exec_env
            await c.delete_task("envs", force=True)
            # The next run starts from the container's own variables again.
            await c.create_task("envs")
            assert "B=run" not in json.loads(bundle.read_text())["process"]["env"]
            await c.delete_task("envs", force=True)
            await c.remove_container("envs")

    asyncio.run(go())


def test_a_start_releases_the_init_as_runc_start_would(runtime_daemon, busybox):
    """The runtime starts runc containers at their exec fifo (runtime/tasks/exec_fifo.py): runc itself must see
    them running, and an init killed before its start must give runc's own error."""
    runc_root = Path(runtime_daemon.state) / "runc" / "runc"

    def runc_status(cid: str) -> str:
        out = subprocess.run(["runc", "--root", str(runc_root), "state", cid], capture_output=True, text=True)
        return json.loads(out.stdout)["status"]

    async def go():
        async with runtime_daemon.client() as c:
            await c.create_container("fifo1", busybox, {"args": ["sleep", "100"]})
            await c.create_task("fifo1")
            assert runc_status("fifo1") == "created"
            await c.start_task("fifo1")
            assert runc_status("fifo1") == "running"
            assert not (runc_root / "fifo1" / "exec.fifo").exists()
            await c.delete_task("fifo1", force=True)

            await c.create_container("fifo2", busybox, {"args": ["true"]})
            created = await c.create_task("fifo2")
            os.kill(created.pid, signal.SIGKILL)
            with pytest.raises((FailedPrecondition, InvalidArgument, NotFound)):
                await asyncio.wait_for(c.start_task("fifo2"), 10)
            await c.delete_task("fifo2", force=True)
            for cid in ("fifo1", "fifo2"):
                await c.remove_container(cid)

    asyncio.run(go())
    assert _leftovers(runtime_daemon, "fifo1") == [] and _leftovers(runtime_daemon, "fifo2") == []
