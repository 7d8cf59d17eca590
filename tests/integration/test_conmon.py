"""conmon + runc supervision, against real containers on a busybox rootfs.

Needs root, runc, conmon and busybox-static; every container is torn down (runc delete
--force, conmon killed, cgroups removed) whatever the test's outcome.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from runtime.client.attach import STDERR, STDOUT, Attachment, attach, resize
from runtime.client.logs import follow
from runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from runtime.tasks import exits
from runtime.tasks.conmon import (
    CONMON,
    TaskProcess,
    create_exec,
    create_task,
    exec_process,
)
from runtime.tasks.runc import RUNC, Runc

ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "pyengine-test"
APPLETS = ("sh", "echo", "cat", "sleep", "stty", "touch", "ls", "true")
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE"]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(os.access(p, os.X_OK) for p in (RUNC, CONMON, BUSYBOX)),
    reason="needs root, runc, conmon and busybox",
)


def cgroup_dirs(leaf: str) -> list[Path]:
    base = Path("/sys/fs/cgroup")
    return [d / CGROUP_PARENT / leaf for d in base.iterdir() if (d / "cgroup.procs").exists()]


def config(args: list[str], cid: str, terminal: bool) -> dict[str, Any]:
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: CAPS for k in ("bounding", "effective", "permitted")},
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "ctr",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "cgroupsPath": f"/{CGROUP_PARENT}/{cid}",
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
        },
    }


class Harness:
    """Makes bundles and tasks under one tmp dir and remembers everything to tear down."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runc_root = str(tmp / "runc")
        self.runc = Runc(self.runc_root)
        self.exit_dir = str(tmp / "exits")
        self.ids: list[str] = []
        self.state_dirs: list[Path] = []

    def bundle(self, args: list[str], *, terminal: bool = False, deep: bool = False,
               cid: str | None = None) -> tuple[str, Path]:
        if cid is None:
            cid = f"t-{uuid.uuid4().hex[:12]}"
            self.ids.append(cid)
        parent = self.tmp / ("d" * 60) / ("e" * 60) if deep else self.tmp
        bundle = parent / "bundles" / uuid.uuid4().hex[:8]
        rootfs = bundle / "rootfs"
        for d in ("bin", "etc", "proc", "dev", "sys", "tmp"):
            (rootfs / d).mkdir(parents=True)
        shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
        for applet in APPLETS:
            (rootfs / "bin" / applet).symlink_to("busybox")
        (rootfs / "etc" / "hostname").write_text("pyengine-test\n")
        (bundle / "config.json").write_text(json.dumps(config(args, cid, terminal)))
        return cid, bundle

    def state_dir(self, name: str) -> Path:
        d = self.tmp / "state" / name
        self.state_dirs.append(d)
        return d

    async def create(self, args: list[str], *, terminal: bool = False, stdin: bool = False, deep: bool = False,
                     **kw: Any) -> TaskProcess:
        cid, bundle = self.bundle(args, terminal=terminal, deep=deep)
        return await create_task(cid, str(bundle), runc_root=self.runc_root, state_dir=str(self.state_dir(cid)),
                                 log_path=str(self.tmp / "logs" / f"{cid}.log"), exit_dir=self.exit_dir,
                                 terminal=terminal, stdin=stdin, **kw)

    def log(self, cid: str) -> str:
        return str(self.tmp / "logs" / f"{cid}.log")

    def teardown(self) -> None:
        for cid in self.ids:
            subprocess.run([RUNC, "--root", self.runc_root, "kill", "--all", cid, "KILL"], check=False,
                           capture_output=True)
        for d in self.state_dirs:
            pidfile = str(d / exits.CONMON_PIDFILE)
            pid = exits.read_pidfile(pidfile)
            if pid is not None and exits.is_conmon(pid, pidfile):
                os.kill(pid, signal.SIGKILL)
        for cid in self.ids:
            subprocess.run([RUNC, "--root", self.runc_root, "delete", "--force", cid], check=False, capture_output=True)
            for d in cgroup_dirs(cid):
                if d.exists():
                    d.rmdir()


@pytest.fixture(scope="module", autouse=True)
def cgroup_parent() -> Any:
    yield
    for d in cgroup_dirs(""):
        try:
            d.rmdir()
        except OSError:
            pass  # someone else's containers still live there


@pytest.fixture
def h(tmp_path: Path) -> Any:
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        harness.teardown()


async def read_all(a: Attachment, timeout: float = 10) -> list[tuple[int, bytes]]:
    async def go() -> list[tuple[int, bytes]]:
        return [chunk async for chunk in a]
    return await asyncio.wait_for(go(), timeout)


async def read_until(a: Attachment, needle: bytes, timeout: float = 10) -> bytes:
    seen = b""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            chunk = await a.read()
            assert chunk is not None, f"output ended before {needle!r}: {seen!r}"
            seen += chunk[1]
    return seen


async def wait_exit(p: Any, timeout: float = 10) -> int | None:
    return await asyncio.wait_for(
        exits.wait_exit(p.conmon_pid, os.path.join(p.state_dir, exits.CONMON_PIDFILE), p.exit_file), timeout)


def rss_kib(pid: int) -> int:
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1])
    raise AssertionError("no VmRSS")


async def test_exit_code_and_log_streams(h: Harness) -> None:
    t = await h.create(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (await h.runc.state(t.id))["status"] == "created"
    await h.runc.start(t.id)
    assert await wait_exit(t) == 7
    assert Path(t.exit_file).read_text().strip() == "7"
    assert t.exit_file == os.path.join(h.exit_dir, t.id)
    # The log is complete by the time the exit is recorded.
    records = [r async for r in follow(h.log(t.id))]
    assert [(r.stream, r.data) for r in records] == [("stdout", b"out\n"), ("stderr", b"err\n")]
    rec = exits.recover(t.state_dir)
    assert (rec.conmon_alive, rec.pid, rec.exit_code) == (False, t.pid, 7)
    assert (await h.runc.state(t.id))["status"] == "stopped"


async def test_attach_before_start_sees_everything(h: Harness) -> None:
    # A bundle path far beyond sun_path's 108 bytes: conmon binds it with --full-attach.
    t = await h.create(["sh", "-c", "echo first; echo e1 >&2; echo second; echo e2 >&2"], deep=True)
    assert len(t.attach_socket) > 108
    async with await Attachment.connect(t.attach_socket) as a:
        await h.runc.start(t.id)
        chunks = await read_all(a)
    # conmon may coalesce what it reads at once, but nothing comes before the first echo.
    assert chunks[0][0] == STDOUT and chunks[0][1].startswith(b"first\n")
    assert b"".join(d for s, d in chunks if s == STDOUT) == b"first\nsecond\n"
    assert b"".join(d for s, d in chunks if s == STDERR) == b"e1\ne2\n"
    assert await wait_exit(t) == 0


async def test_stdin_roundtrip_and_close(h: Harness) -> None:
    t = await h.create(["cat"], stdin=True)
    async with await Attachment.connect(t.attach_socket) as a:
        await h.runc.start(t.id)
        await a.write(b"hello\n")
        assert await read_until(a, b"hello\n") == b"hello\n"
        # More than conmon reads from one packet: write() must chunk it.
        big = bytes(range(256)) * 400 + b"\n"
        await a.write(big)
        assert await read_until(a, big[-100:], timeout=10) == big
        a.close_stdin()
        assert await read_all(a) == []
    assert await wait_exit(t) == 0


async def test_disconnect_closes_stdin(h: Harness) -> None:
    t = await h.create(["cat"], stdin=True)
    async with await Attachment.connect(t.attach_socket) as a:
        await h.runc.start(t.id)
        await a.write(b"bye\n")
        await read_until(a, b"bye\n")
    # Gone without a shutdown: conmon closes the process's stdin all the same.
    assert await wait_exit(t) == 0


async def test_attach_pumps_both_ways(h: Harness) -> None:
    t = await h.create(["sh", "-c", "cat; echo done >&2"], stdin=True)
    await h.runc.start(t.id)  # cat waits for input: nothing is written before we attach
    got: list[tuple[int, bytes]] = []

    async def lines():
        for word in (b"a\n", b"b\n"):
            yield word
            await asyncio.sleep(0.01)

    async def collect(stream: int, data: bytes) -> None:
        got.append((stream, data))

    await asyncio.wait_for(attach(t.attach_socket, stdin=lines(), on_output=collect), 10)
    assert b"".join(d for s, d in got if s == STDOUT) == b"a\nb\n"
    assert b"".join(d for s, d in got if s == STDERR) == b"done\n"
    assert await wait_exit(t) == 0


async def test_leave_stdin_open_survives_a_detach(h: Harness) -> None:
    t = await h.create(["cat"], stdin=True, leave_stdin_open=True)
    async with await Attachment.connect(t.attach_socket) as a:
        await h.runc.start(t.id)
        await a.write(b"one\n")
        await read_until(a, b"one\n")
    async with await Attachment.connect(t.attach_socket) as a:
        await a.write(b"two\n")
        await read_until(a, b"two\n")
        assert (await h.runc.state(t.id))["status"] == "running"
        await h.runc.kill(t.id, signal.SIGKILL)
        assert await read_all(a) == []
    assert await wait_exit(t) == 128 + signal.SIGKILL


async def test_terminal_shell_and_resize(h: Harness) -> None:
    t = await h.create(["sh"], terminal=True, stdin=True)
    async with await Attachment.connect(t.attach_socket) as a:
        await h.runc.start(t.id)
        await a.write(b"echo $((6*7))\n")
        assert b"42" in await read_until(a, b"42\r\n")
        await resize(t.ctl_fifo, 30, 90)
        await a.write(b"stty size\n")
        await read_until(a, b"30 90")
        await a.write(b"exit 3\n")
        await read_all(a)
    assert await wait_exit(t) == 3
    # conmon records the exit just before it goes: only once it is gone is the fifo unread.
    await exits.wait_gone(t.conmon_pid, os.path.join(t.state_dir, exits.CONMON_PIDFILE))
    with pytest.raises(FailedPrecondition):
        await resize(t.ctl_fifo, 10, 10)  # nobody reads the fifo any more
    with pytest.raises(InvalidArgument):
        await resize(t.ctl_fifo, -1, 10)


def exec_spec(args: list[str]) -> dict[str, Any]:
    return {"args": args, "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}


async def test_exec(h: Harness) -> None:
    t = await h.create(["sleep", "100"])
    await h.runc.start(t.id)
    common = {"runc_root": h.runc_root}

    # Detached, with a log.
    e = await exec_process(t.id, "x1", exec_spec(["cat", "/etc/hostname"]), state_dir=str(h.state_dir("x1")),
                           log_path=str(h.tmp / "logs" / "x1.log"), **common)
    assert await wait_exit(e) == 0
    assert e.exit_file == os.path.join(e.state_dir, "exit")
    assert [r.data async for r in follow(str(h.tmp / "logs" / "x1.log"))] == [b"pyengine-test\n"]

    # Attached before it starts: nothing is missed; exit code from its own exit file.
    pending = await create_exec(t.id, "x2", exec_spec(["sh", "-c", "echo first; echo e >&2; exit 4"]),
                                state_dir=str(h.state_dir("x2")), **common)
    async with await Attachment.connect(pending.attach_socket) as a:
        e2 = await pending.start()
        chunks = await read_all(a)
    assert chunks[0] == (STDOUT, b"first\n") and b"".join(d for s, d in chunks if s == STDERR) == b"e\n"
    assert await wait_exit(e2) == 4
    assert e2.pid != t.pid and exits.read_exit_file(e2.exit_file) == 4

    # With stdin and a terminal.
    pending = await create_exec(t.id, "x3", exec_spec(["sh"]), state_dir=str(h.state_dir("x3")),
                                terminal=True, stdin=True, **common)
    async with await Attachment.connect(pending.attach_socket) as a:
        e3 = await pending.start()
        await a.write(b"echo $((6*7)); exit 5\n")
        assert b"42" in await read_until(a, b"42\r\n")
        await read_all(a)
    assert await wait_exit(e3) == 5

    # Aborted before start: the process never runs.
    pending = await create_exec(t.id, "x4", exec_spec(["touch", "/tmp/ran"]), state_dir=str(h.state_dir("x4")),
                                **common)
    pending.abort()
    check = await exec_process(t.id, "x5", exec_spec(["ls", "/tmp/ran"]), state_dir=str(h.state_dir("x5")),
                               **common)
    assert await wait_exit(check) == 1
    assert exits.read_exit_file(os.path.join(pending.state_dir, "exit")) is None

    with pytest.raises(InvalidArgument, match="no such file"):
        await exec_process(t.id, "x6", exec_spec(["/nope"]), state_dir=str(h.state_dir("x6")), **common)
    assert not exits.recover(str(h.tmp / "state" / "x6")).conmon_alive

    # The task itself is untouched by all that.
    assert (await h.runc.state(t.id))["status"] == "running"


async def test_runc_controls_kill_and_delete(h: Harness) -> None:
    t = await h.create(["sleep", "100"])
    await h.runc.start(t.id)
    assert 0 < rss_kib(t.conmon_pid) < 8 * 1024
    assert await h.runc.ps(t.id) == [t.pid]
    assert t.id in [c["id"] for c in await h.runc.list()]
    await h.runc.update(t.id, {"memory": {"limit": 64 * 1024 * 1024}})
    stats = await h.runc.events_stats(t.id)
    assert stats["memory"]["usage"]["limit"] == 64 * 1024 * 1024 and stats["pids"]["current"] == 1
    await h.runc.pause(t.id)
    assert (await h.runc.state(t.id))["status"] == "paused"
    with pytest.raises(FailedPrecondition):
        await h.runc.pause(t.id)
    await h.runc.resume(t.id)
    with pytest.raises(FailedPrecondition):
        await h.runc.start(t.id)
    with pytest.raises(FailedPrecondition):
        await h.runc.delete(t.id)  # still running

    await h.runc.kill(t.id, signal.SIGKILL)
    assert await wait_exit(t) == 137
    with pytest.raises(FailedPrecondition):
        await h.runc.kill(t.id, signal.SIGTERM)
    await h.runc.delete(t.id)
    await h.runc.delete(t.id)  # idempotent
    with pytest.raises(NotFound):
        await h.runc.state(t.id)
    assert not exits.is_alive(t.conmon_pid) and not exits.is_alive(t.pid)
    assert not any(d.exists() for d in cgroup_dirs(t.id))
    assert not Path(t.attach_socket).exists()


async def test_create_failures(h: Harness) -> None:
    with pytest.raises(InvalidArgument, match="/nonexistent.*no such file"):
        await h.create(["/nonexistent"])
    cid = h.ids[-1]
    with pytest.raises(NotFound):
        await h.runc.state(cid)
    assert not exits.recover(str(h.tmp / "state" / cid)).conmon_alive

    # A task whose conmon lives is not replaced.
    t = await h.create(["sleep", "100"])
    with pytest.raises(AlreadyExists):
        await create_task(t.id, str(Path(t.attach_socket).parent), runc_root=h.runc_root, state_dir=t.state_dir,
                          log_path=None, exit_dir=h.exit_dir)
    # The same id in another bundle and state dir: runc refuses it.
    _, other = h.bundle(["true"], cid=t.id)
    with pytest.raises(AlreadyExists):
        await create_task(t.id, str(other), runc_root=h.runc_root,
                          state_dir=str(h.state_dir("other")), log_path=None, exit_dir=h.exit_dir)
    assert (await h.runc.state(t.id))["status"] == "created"


CREATOR = textwrap.dedent("""
    import asyncio, json, sys
    from runtime.tasks.conmon import create_task
    from runtime.tasks.runc import Runc

    async def main(cid, bundle, runc_root, state_dir, log_path, exit_dir):
        t = await create_task(cid, bundle, runc_root=runc_root, state_dir=state_dir, log_path=log_path,
                              exit_dir=exit_dir)
        await Runc(runc_root).start(cid)
        print(json.dumps({"pid": t.pid, "conmon_pid": t.conmon_pid}))

    asyncio.run(main(*sys.argv[1:]))
""")


async def test_conmon_survives_its_creator(h: Harness) -> None:
    cid, bundle = h.bundle(["sh", "-c", "echo started; exec sleep 100"])
    state_dir = h.state_dir(cid)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CREATOR, cid, str(bundle), h.runc_root, str(state_dir), h.log(cid), h.exit_dir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    created = json.loads(out)
    assert time.monotonic() - started < 10

    # The creator is gone; the container and its conmon are not.
    rec = exits.recover(str(state_dir))
    assert rec.conmon_alive and rec.pid_alive and rec.exit_code is None
    assert (rec.conmon_pid, rec.pid) == (created["conmon_pid"], created["pid"])
    assert (await h.runc.state(cid))["status"] == "running"
    assert os.getppid() != rec.conmon_pid and proc.pid != rec.conmon_pid

    # Still attachable, still logging; the exit is recorded after a kill.
    async with await Attachment.connect(str(bundle / "attach")) as a:
        await h.runc.kill(cid, signal.SIGKILL)
        assert await read_all(a) == []
    code = await asyncio.wait_for(exits.wait_exit(rec.conmon_pid, str(state_dir / "conmon.pid"),
                                                  os.path.join(h.exit_dir, cid)), 10)
    assert code == 137
    assert exits.recover(str(state_dir)).exit_code == 137
    assert [r.data async for r in follow(h.log(cid))] == [b"started\n"]


async def test_wait_exit_when_conmon_is_killed(h: Harness) -> None:
    t = await h.create(["sleep", "100"])
    await h.runc.start(t.id)
    waiter = asyncio.create_task(wait_exit(t))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    os.kill(t.conmon_pid, signal.SIGKILL)
    # Nothing recorded an exit: None, and the orphaned process is still there to deal with.
    assert await waiter is None
    rec = exits.recover(t.state_dir)
    assert (rec.conmon_alive, rec.pid_alive, rec.exit_code) == (False, True, None)
