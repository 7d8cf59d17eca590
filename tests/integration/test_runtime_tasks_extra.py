"""More acceptance for runtime tasks, through the runtime client and pyctr:
pause/resume, metrics, ps, OOM kills, exec with a terminal, event order, bad commands."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.client import InvalidArgument, NotFound
from runtime.client.attach import Attachment
from runtime.client.records import Task
from tests.integration.helpers import BIN, PtyProcess, pyctr
from tests.integration.test_runtime_tasks import _leftovers

MIB = 1024 * 1024
# Doubles a shell string until the memory limit is hit: pure busybox sh, no extra applets.
ALLOCATE = "a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done"


@pytest.fixture
def busybox(runtime_daemon, registry, pyctr_env):
    ref = f"{registry.host}/library/busybox:latest"
    pyctr(pyctr_env, "images", "pull", ref, check=True)
    return ref


def _run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _with_events(d, topics: list[str], action: Callable[[Any], Awaitable[Any]],
                       until: Callable[[list[dict[str, Any]]], bool], timeout: float = 30) -> tuple[Any, list]:
    """Subscribe to `topics`, run `action(client)`, then collect events until `until(events)`."""
    async with d.client() as c:
        stream = c.events(topics=topics, announce=True)
        first = await stream.__anext__()
        assert first.get("status") == "subscribed", first
        got: list[dict[str, Any]] = []
        result = await action(c)

        async def read() -> None:
            if until(got):
                return
            async for ev in stream:
                got.append(ev)
                if until(got):
                    return

        try:
            await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            raise AssertionError(f"events seen before the timeout: {got}") from None
        finally:
            await stream.aclose()
        return result, got


async def _pyctr_async(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    p = await asyncio.create_subprocess_exec(str(BIN / "pyctr"), *args, env=env, stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(p.communicate(), 120)
    assert p.returncode is not None
    return p.returncode, out.decode(), err.decode()


def _for(cid: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"].get("container_id") == cid]


def _topics(cid: str, events: list[dict[str, Any]]) -> list[str]:
    return [e["topic"] for e in _for(cid, events)]


def _remove(env: dict[str, str], cid: str) -> None:
    pyctr(env, "tasks", "delete", "-f", cid)
    pyctr(env, "containers", "rm", cid)


def _task(d, cid: str) -> Task:
    async def go() -> Task:
        async with d.client() as c:
            return await c.task(cid)

    return _run(go())


def _freezer_state(cgroups_path: str) -> str | None:
    p = Path("/sys/fs/cgroup/freezer") / cgroups_path.lstrip("/") / "freezer.state"
    if not p.exists():  # cgroup v2 keeps it in cgroup.freeze
        p2 = Path("/sys/fs/cgroup") / cgroups_path.lstrip("/") / "cgroup.freeze"
        return None if not p2.exists() else {"1": "FROZEN", "0": "THAWED"}[p2.read_text().strip()]
    return p.read_text().strip()


def _process_state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return "?"


def test_pause_resume_status_and_events(runtime_daemon, pyctr_env, busybox):
    pyctr(pyctr_env, "run", "-d", busybox, "p1", "sleep", "1000", check=True)
    try:
        async def pause_then_resume(c) -> tuple[str, str, str | None, str | None]:
            rc, _, err = await _pyctr_async(pyctr_env, "tasks", "pause", "p1")
            assert rc == 0, err
            t = await c.task("p1")
            paused, frozen = t.status, _freezer_state(t.cgroups_path)
            rc, ls, _ = await _pyctr_async(pyctr_env, "tasks", "ls")
            assert any(line.split()[0] == "p1" and line.split()[2] == "PAUSED" for line in ls.splitlines()[1:]), ls
            rc, _, err = await _pyctr_async(pyctr_env, "tasks", "resume", "p1")
            assert rc == 0, err
            t = await c.task("p1")
            return paused, t.status, frozen, _freezer_state(t.cgroups_path)

        (paused, resumed, frozen, thawed), events = _run(_with_events(
            runtime_daemon, ["/tasks/paused", "/tasks/resumed"], pause_then_resume,
            lambda evs: len(_for("p1", evs)) >= 2))
        assert paused == "paused"
        assert resumed == "running"
        assert (frozen, thawed) in ((None, None), ("FROZEN", "THAWED"))
        assert _topics("p1", events) == ["/tasks/paused", "/tasks/resumed"]
        # A resumed task still works.
        e = pyctr(pyctr_env, "tasks", "exec", "--exec-id", "e1", "p1", "echo", "alive")
        assert e.returncode == 0 and e.stdout == "alive\n", e.stderr
    finally:
        _remove(pyctr_env, "p1")


def test_pause_twice_and_resume_running_are_refused(runtime_daemon, pyctr_env, busybox):
    pyctr(pyctr_env, "run", "-d", busybox, "p2", "sleep", "1000", check=True)
    try:
        r = pyctr(pyctr_env, "tasks", "resume", "p2")
        assert r.returncode != 0 and "Traceback" not in r.stderr and "running" in r.stderr, r.stderr
        pyctr(pyctr_env, "tasks", "pause", "p2", check=True)
        r = pyctr(pyctr_env, "tasks", "pause", "p2")
        assert r.returncode != 0 and "Traceback" not in r.stderr and "paused" in r.stderr, r.stderr
        assert _task(runtime_daemon, "p2").status == "paused"
    finally:
        _remove(pyctr_env, "p2")


def test_force_delete_of_paused_task(runtime_daemon, pyctr_env, busybox):
    pyctr(pyctr_env, "run", "-d", busybox, "p3", "sleep", "1000", check=True)
    pyctr(pyctr_env, "tasks", "pause", "p3", check=True)
    r = pyctr(pyctr_env, "tasks", "delete", "-f", "p3", timeout=60)
    assert r.returncode == 0, r.stderr
    pyctr(pyctr_env, "containers", "rm", "p3", check=True)
    assert pyctr(pyctr_env, "tasks", "ls", check=True).stdout.strip().splitlines()[1:] == []
    assert _leftovers(runtime_daemon, "p3") == []


def test_metrics_and_ps_of_running_task(runtime_daemon, pyctr_env, busybox):
    pyctr(pyctr_env, "run", "-d", "--memory-limit", str(64 * MIB), "--pids-limit", "20", busybox, "m1",
          "sleep", "1000", check=True)
    try:
        t = _task(runtime_daemon, "m1")

        async def metrics() -> dict[str, Any]:
            async with runtime_daemon.client() as c:
                return (await c.task_metrics("m1")).model_dump()

        m = _run(metrics())
        assert m["memory_usage"] and m["memory_usage"] > 0, m
        assert m["pids_current"] and m["pids_current"] >= 1, m
        assert m["memory_limit"] == 64 * MIB, m
        assert m["pids_limit"] == 20, m
        assert m["cpu_usage_ns"] is not None and m["cpu_usage_ns"] > 0, m

        out = pyctr(pyctr_env, "tasks", "metrics", "m1", check=True).stdout
        rows = dict(line.split(None, 1) for line in out.splitlines()[1:] if line.strip())
        assert int(rows["memory_usage"]) > 0 and int(rows["pids_current"]) >= 1, out

        ps = pyctr(pyctr_env, "tasks", "ps", "m1", check=True).stdout.split()
        assert ps[0] == "PID"
        pids = [int(p) for p in ps[1:]]
        assert t.pid in pids, (t.pid, ps)
        # Every process of the container, and only those: its cgroup's members.
        procs = Path("/sys/fs/cgroup/pids") / (t.cgroups_path or "").lstrip("/") / "cgroup.procs"
        if procs.exists():
            assert sorted(pids) == sorted(int(p) for p in procs.read_text().split())
        assert len(pids) == m["pids_current"]
    finally:
        _remove(pyctr_env, "m1")


@pytest.mark.parametrize("init", [True, False], ids=["init", "no-init"])
def test_oom_kill_reports_event_and_nonzero_exit(runtime_daemon, pyctr_env, busybox, init):
    cid = "oom-init" if init else "oom-plain"

    async def run(c) -> tuple[int, str, str]:
        return await _pyctr_async(pyctr_env, "run", "--rm", "--memory-limit", str(16 * MIB),
                                  "--init" if init else "--no-init", busybox, cid, "sh", "-c", ALLOCATE)

    (rc, _, err), events = _run(_with_events(
        runtime_daemon, ["/tasks/oom", "/tasks/exit", "/tasks/delete"], run,
        lambda evs: "/tasks/delete" in _topics(cid, evs), timeout=60))
    assert rc == 137, (rc, err)
    assert "Traceback" not in err
    assert _topics(cid, events) == ["/tasks/oom", "/tasks/exit", "/tasks/delete"]
    exit_ev = _for(cid, events)[1]["event"]
    assert exit_ev["exit_status"] == 137
    assert _leftovers(runtime_daemon, cid) == []


def test_oom_killed_flag_on_task(runtime_daemon, busybox):
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with runtime_daemon.client() as c:
            await c.create_container("oom2", busybox, {"args": ["sh", "-c", ALLOCATE], "memory": 16 * MIB},
                                     init=False)
            await c.create_task("oom2")
            await c.start_task("oom2")
            status = await asyncio.wait_for(c.wait_task("oom2"), 60)
            task = await c.task("oom2")
            await c.delete_task("oom2")
            await c.remove_container("oom2")
            return status, task

    status, task = _run(go())
    assert status.exit_status == 137
    assert task.status == "stopped" and task.oom_killed is True, task


def test_oom_kill_of_an_exec_is_reported(runtime_daemon, pyctr_env, busybox):
    pyctr(pyctr_env, "run", "-d", "--no-init", "--memory-limit", str(16 * MIB), busybox, "oom3", "sleep", "1000",
          check=True)
    try:
        async def hog(c) -> tuple[int, str, str]:
            return await _pyctr_async(pyctr_env, "tasks", "exec", "--exec-id", "hog", "oom3", "sh", "-c", ALLOCATE)

        (rc, _, err), _ = _run(_with_events(
            runtime_daemon, ["/tasks/oom", "/tasks/exit"], hog,
            lambda evs: "/tasks/oom" in _topics("oom3", evs), timeout=5))
        assert rc == 137, err
        assert _task(runtime_daemon, "oom3").status == "running"  # only the exec was killed
    finally:
        _remove(pyctr_env, "oom3")


def test_exec_with_terminal_under_pty(runtime_daemon, pyctr_env, busybox):
    pyctr(pyctr_env, "run", "-d", busybox, "x1", "sleep", "1000", check=True)
    try:
        p = PtyProcess([str(BIN / "pyctr"), "tasks", "exec", "-t", "--exec-id", "sh1", "x1", "sh"], pyctr_env)
        p.read_until(b"#")
        p.write(b"tty; echo $((6*7))\r")
        p.read_until(b"42")
        p.write(b"exit 4\r")
        out = p.out
        assert p.wait() == 4, out
        assert b"/dev/pts/" in out, out  # the exec really got a terminal
        t = _task(runtime_daemon, "x1")
        assert t.status == "running" and t.execs == {}, t
    finally:
        _remove(pyctr_env, "x1")


def test_task_events_in_order(runtime_daemon, pyctr_env, busybox):
    async def run(c) -> tuple[int, str, str]:
        return await _pyctr_async(pyctr_env, "run", "--rm", busybox, "ev1", "sh", "-c", "exit 3")

    (rc, _, err), events = _run(_with_events(
        runtime_daemon, ["/tasks/*"], run, lambda evs: "/tasks/delete" in _topics("ev1", evs)))
    assert rc == 3, err
    assert _topics("ev1", events) == ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]
    create, start, exit_, delete = (e["event"] for e in _for("ev1", events))
    assert create["pid"] == start["pid"] == exit_["pid"] == delete["pid"] > 0
    assert exit_["exit_status"] == 3 and delete["exit_status"] == 3
    stamps = [e["timestamp"] for e in _for("ev1", events)]
    assert stamps == sorted(stamps)
    assert all(e["namespace"] == "default" for e in _for("ev1", events))
    assert _leftovers(runtime_daemon, "ev1") == []


@pytest.mark.parametrize("init", [True, False], ids=["init", "no-init"])
def test_run_unknown_command_is_a_clear_error(runtime_daemon, pyctr_env, busybox, init):
    cid = "u-init" if init else "u-plain"
    r = pyctr(pyctr_env, "run", "--rm", "--init" if init else "--no-init", busybox, cid, "no-such-command", timeout=60)
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert "no-such-command" in r.stderr, r.stderr
    assert any(s in r.stderr.lower() for s in ("not found", "no such file")), r.stderr
    # --rm cleaned up even though the command never ran.
    assert pyctr(pyctr_env, "containers", "ls", "-q", check=True).stdout.strip() == ""
    assert pyctr(pyctr_env, "tasks", "ls", check=True).stdout.strip().splitlines()[1:] == []


def test_update_live_task_and_the_stored_spec(runtime_daemon, pyctr_env, busybox):
    pyctr(pyctr_env, "run", "-d", "--memory-limit", str(64 * MIB), "--pids-limit", "20", busybox, "up1",
          "sleep", "1000", check=True)
    new = {"memory": 128 * MIB, "pids_limit": 30, "nano_cpus": 500_000_000}
    try:
        async def go() -> tuple[dict[str, Any], ...]:
            async with runtime_daemon.client() as c:
                await c.update_task("up1", new)
                live = await c.task_metrics("up1")
                record = await c.set_container_resources("up1", new)
                await c.update_task("up1", {"pids_limit": -1})
                lifted = await c.task_metrics("up1")
                for bad in ({"memory": MIB}, {"cpuset_cpus": "63"}, {"cpuset_mems": "9"}, {"bogus": 1}):
                    with pytest.raises(InvalidArgument):
                        await c.update_task("up1", bad)
                    with pytest.raises(InvalidArgument):
                        await c.set_container_resources("up1", bad)
                for call in (c.update_task, c.set_container_resources):
                    with pytest.raises(NotFound):
                        await call("nope", new)
                # The container's next task starts with the stored limits.
                await c.delete_task("up1", force=True)
                await c.create_task("up1")
                await c.start_task("up1")
                return live, record, lifted, await c.task_metrics("up1")

        live, record, lifted, next_run = _run(go())
        assert (live.memory_limit, live.pids_limit) == (128 * MIB, 30)
        assert lifted.pids_limit is None
        res = record.spec["linux"]["resources"]
        assert res["memory"]["limit"] == 128 * MIB and res["pids"] == {"limit": 30}
        assert res["cpu"] == {"quota": 50_000, "period": 100_000}
        assert res["devices"][0] == {"allow": False, "access": "rwm"}  # device rules are kept
        assert (next_run.memory_limit, next_run.pids_limit) == (128 * MIB, 30)
        quota = Path("/sys/fs/cgroup/cpu") / (_task(runtime_daemon, "up1").cgroups_path or "").lstrip("/") / \
            "cpu.cfs_quota_us"
        if quota.exists():
            assert quota.read_text().strip() == "50000"
    finally:
        _remove(pyctr_env, "up1")


@pytest.mark.parametrize("keep", [True, False])
def test_keep_stdin_open_outlives_attached_clients(runtime_daemon, busybox, keep):
    """With keep_stdin_open a client leaving leaves the process's stdin open; without, the process reads EOF."""
    async def go() -> tuple[bytes, int]:
        async with runtime_daemon.client() as c:
            await c.create_container("kso", busybox, {"args": ["sh", "-c", "cat; exit 9"], "stdin": True},
                                     init=False)
            try:
                with pytest.raises(InvalidArgument, match="needs stdin"):
                    await c.create_task("kso", keep_stdin_open=True)
                task = await c.create_task("kso", stdin=True, keep_stdin_open=keep)
                assert task.keep_stdin_open is keep
                first = await Attachment.connect(task.io.attach_socket)
                await c.start_task("kso")
                await first.write(b"one\n")
                assert await asyncio.wait_for(first.read(), 30) == (1, b"one\n")
                first.close()
                echoed = b""
                if keep:
                    async with await Attachment.connect(task.io.attach_socket) as second:
                        await second.write(b"two\n")
                        echoed = (await asyncio.wait_for(second.read(), 30) or (0, b""))[1]
                    await c.kill_task("kso", "SIGKILL")
                status = await asyncio.wait_for(c.wait_task("kso"), 30)
                return echoed, status.exit_status
            finally:
                await c.delete_task("kso", force=True)
                await c.remove_container("kso")

    assert _run(go()) == ((b"two\n", 137) if keep else (b"", 9))
