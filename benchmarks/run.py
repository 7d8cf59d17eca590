"""Run benchmark: start-to-exit latency of a short container, and the monitor's memory per task.

Against one local docker-registry holding the busybox test image, side by side:

* `pyctr run --rm REF id true` on pyruntimed (with its default tini init, and with --no-init),
* `ctr run --rm REF id true` on containerd (its own root/state/socket, the image pulled with
  `ctr images pull --plain-http`), when installed,
* `runc run` of a prepared bundle (the same busybox rootfs), as the floor both sit on,
* `pyctr version` / `ctr version`: CLI start-up plus one API round trip.

The runs are interleaved (one of each per round) so background noise hits all alike; each
command gets one untimed warm-up run. Then 10 detached `sleep` containers are started on each
daemon and the per-task monitors are measured: conmon for pyruntimed, containerd-shim-runc-v2
for containerd (VmRSS from /proc/PID/status, PSS from /proc/PID/smaps_rollup), plus each
daemon's own RSS with the 10 tasks running. Everything is removed afterwards.

    .venv/bin/python -m benchmarks.run [--runs 20] [--tasks 10]
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runtime.tasks import exits
from tests.fixtures.daemons import RuntimeDaemon, remove_cgroup_tree, unmount_under
from tests.fixtures.images import busybox_image
from tests.fixtures.registry import Registry, push

BIN = Path(sys.executable).parent
PYCTR = str(BIN / "pyctr")


# -- measuring ------------------------------------------------------------------------------

def proc_kib(pid: int, field_name: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def quiet(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run for its effect, whatever the outcome (clean-up, probes)."""
    return subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=timeout)


def pids_of(pattern: str) -> list[int]:
    out = quiet(["pgrep", "-f", pattern]).stdout
    return [int(p) for p in out.split()]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    p = subprocess.run(cmd, check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return elapsed


def check(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> str:
    p = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def wait_for(test: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Series:
    name: str
    cmd: Callable[[int], list[str]]
    env: dict[str, str] | None = None
    times: list[float] = field(default_factory=list)


@dataclass
class Monitor:
    name: str
    rss_kib: list[int]
    pss_kib: list[int]
    daemon: str
    daemon_rss_kib: int


# -- pyruntimed -------------------------------------------------------------------------------

@contextlib.contextmanager
def pyruntimed(ref: str) -> Iterator[tuple[RuntimeDaemon, dict[str, str]]]:
    d = RuntimeDaemon()
    try:
        d.start()
        env = dict(os.environ, PYCTR_ADDRESS=d.address)
        check([PYCTR, "images", "pull", ref], env)
        yield d, env
    finally:
        # Whatever a failed run left: tasks, containers, then the daemon, conmons, mounts, cgroups.
        if d.proc is not None:
            env = dict(os.environ, PYCTR_ADDRESS=d.address)
            out = quiet([PYCTR, "containers", "ls", "-q"], env).stdout
            for cid in out.split():
                quiet([PYCTR, "tasks", "delete", "-f", cid], env)
                quiet([PYCTR, "containers", "rm", cid], env)
        d.cleanup()


def conmon_monitors(d: RuntimeDaemon, env: dict[str, str], ref: str, n: int) -> Monitor:
    ids = [f"rss{i}" for i in range(n)]
    try:
        for cid in ids:
            check([PYCTR, "run", "-d", ref, cid, "sleep", "100"], env)
        pids = []
        for cid in ids:
            # The task's monitor dir holds the pidfile conmon was started with (--conmon-pidfile).
            pidfile = Path(d.state, "tasks", "default", cid, "monitor", exits.CONMON_PIDFILE)
            pid = exits.read_pidfile(str(pidfile))
            if pid is None or not exits.is_conmon(pid, str(pidfile)):
                raise RuntimeError(f"no live conmon for {cid} (pidfile {pidfile})")
            pids.append(pid)
        time.sleep(0.5)  # let them settle after start-up
        assert d.proc is not None
        return Monitor("conmon", [proc_kib(p) for p in pids], [pss_kib(p) for p in pids], "pyruntimed",
                       proc_kib(d.proc.pid))
    finally:
        for cid in ids:
            quiet([PYCTR, "tasks", "delete", "-f", cid], env)
            quiet([PYCTR, "containers", "rm", cid], env)


# -- containerd -------------------------------------------------------------------------------

@dataclass
class Containerd:
    base: str
    sock: str
    namespace: str
    proc: subprocess.Popen[bytes]

    def ctr(self, *args: str) -> list[str]:
        return ["ctr", "-a", self.sock, "-n", self.namespace, *args]


@contextlib.contextmanager
def containerd(ref: str) -> Iterator[Containerd | None]:
    if not shutil.which("containerd") or not shutil.which("ctr"):
        yield None
        return
    had_run_dir = os.path.exists("/run/containerd")
    base = tempfile.mkdtemp(prefix="bench-containerd-")
    sock = f"{base}/c.sock"
    cfg = Path(base, "config.toml")
    # The CRI plugin takes no part in `ctr run`; disabling it keeps its CNI/sandbox set-up out.
    cfg.write_text(f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
                   f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\naddress = "{sock}"\n')
    with open(f"{base}/containerd.log", "wb") as log:
        proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
    c = Containerd(base, sock, f"bench{os.getpid()}", proc)
    try:
        wait_for(lambda: os.path.exists(sock) and quiet(c.ctr("version")).returncode == 0, "containerd")
        check(c.ctr("images", "pull", "--plain-http", ref))
        yield c
    finally:
        out = quiet(c.ctr("containers", "ls", "-q")).stdout
        for cid in out.split():
            quiet(c.ctr("tasks", "kill", "-a", "-s", "SIGKILL", cid))
            quiet(c.ctr("tasks", "delete", "-f", cid))
            quiet(c.ctr("containers", "rm", cid))
        # Shims of tasks that could not be deleted outlive containerd: end them by pid.
        shims = pids_of(f"containerd-shim-runc-v2 .*-address {sock}")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid in shims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)
        remove_cgroup_tree(c.namespace)
        # The shims' sockets live in /run/containerd/s; leave no directory that was not there before.
        if not had_run_dir and not pids_of("^containerd( |$)"):
            shutil.rmtree("/run/containerd", ignore_errors=True)


def shim_monitors(c: Containerd, ref: str, n: int) -> Monitor:
    ids = [f"rss{i}" for i in range(n)]
    try:
        for cid in ids:
            check(c.ctr("run", "-d", ref, cid, "sleep", "100"))
        pids = pids_of(f"containerd-shim-runc-v2 .*-address {c.sock}")
        if len(pids) != n:
            raise RuntimeError(f"expected {n} shims, found {len(pids)}")
        time.sleep(0.5)
        return Monitor("containerd-shim-runc-v2", [proc_kib(p) for p in pids], [pss_kib(p) for p in pids],
                       "containerd", proc_kib(c.proc.pid))
    finally:
        for cid in ids:
            quiet(c.ctr("tasks", "kill", "-a", "-s", "SIGKILL", cid))
            quiet(c.ctr("tasks", "delete", "-f", cid))
            quiet(c.ctr("containers", "rm", cid))


# -- plain runc ---------------------------------------------------------------------------------

@contextlib.contextmanager
def runc_bundle(image_layers: list[bytes]) -> Iterator[tuple[str, str, str]]:
    """A bundle with busybox's rootfs and `runc spec`'s config running `true`; yields (bundle, root, cgroup)."""
    base = tempfile.mkdtemp(prefix="bench-runc-")
    bundle, root = f"{base}/bundle", f"{base}/runc-root"
    cgroup = f"pyengine-bench-runc-{os.getpid()}"
    try:
        os.makedirs(f"{bundle}/rootfs")
        for layer in image_layers:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
                tar.extractall(f"{bundle}/rootfs", filter="tar")
        check(["runc", "spec", "-b", bundle])
        spec = json.loads(Path(bundle, "config.json").read_text())
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["true"]
        spec["root"]["readonly"] = True
        Path(bundle, "config.json").write_text(json.dumps(spec))
        yield bundle, root, cgroup
    finally:
        if os.path.isdir(root):
            for cid in check(["runc", "--root", root, "list", "-q"]).split():
                quiet(["runc", "--root", root, "delete", "--force", cid])
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)
        remove_cgroup_tree(cgroup)


def runc_cmd(bundle: str, root: str, cgroup: str) -> Callable[[int], list[str]]:
    # runc takes the cgroup from config.json only; one config per id would cost a write per run,
    # so all runs share one cgroup path (each run's cgroup is gone before the next starts).
    spec_path = Path(bundle, "config.json")
    spec = json.loads(spec_path.read_text())
    spec["linux"]["cgroupsPath"] = f"/{cgroup}/run"
    spec_path.write_text(json.dumps(spec))
    return lambda i: ["runc", "--root", root, "run", "-b", bundle, f"runc{i}"]


# -- report -------------------------------------------------------------------------------------

def ms(values: list[float], fn: Callable[[list[float]], float]) -> str:
    return f"{fn(values) * 1000:.0f}"


def report(series: list[Series], monitors: list[Monitor], runs: int, rounds_note: str) -> None:
    print(f"\nstart-to-exit of `true`, median of {runs} runs ({rounds_note}), ms")
    print(f"{'command':<34}{'median':>8}{'min':>8}{'max':>8}")
    for s in series:
        print(f"{s.name:<34}{ms(s.times, statistics.median):>8}{ms(s.times, min):>8}{ms(s.times, max):>8}")
    if monitors:
        n = len(monitors[0].rss_kib)
        print(f"\nper-task monitor memory, {n} detached `sleep 100` tasks, MiB")
        print(f"{'monitor':<26}{'RSS sum':>9}{'RSS avg':>9}{'PSS sum':>9}{'PSS avg':>9}   daemon RSS")
        for m in monitors:
            print(f"{m.name:<26}{sum(m.rss_kib) / 1024:>9.1f}{statistics.mean(m.rss_kib) / 1024:>9.2f}"
                  f"{sum(m.pss_kib) / 1024:>9.1f}{statistics.mean(m.pss_kib) / 1024:>9.2f}"
                  f"   {m.daemon} {m.daemon_rss_kib / 1024:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=10, help="detached tasks for the memory numbers")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: containers need it")

    image = busybox_image()
    layers = [image.blobs[d] for d in image.layer_digests]
    with contextlib.ExitStack() as stack:
        reg = stack.enter_context(Registry())
        push(reg, "library/busybox", "latest", image)
        ref = f"{reg.host}/library/busybox:latest"
        d, env = stack.enter_context(pyruntimed(ref))
        ctrd = stack.enter_context(containerd(ref))
        bundle, runc_root, cgroup = stack.enter_context(runc_bundle(layers))

        series = [
            Series("pyctr run --rm (tini init)", lambda i: [PYCTR, "run", "--rm", ref, f"py{i}", "true"], env),
            Series("pyctr run --rm --no-init", lambda i: [PYCTR, "run", "--rm", "--no-init", ref, f"pn{i}", "true"],
                   env),
        ]
        if ctrd is not None:
            series.append(Series("ctr run --rm", lambda i: ctrd.ctr("run", "--rm", ref, f"ct{i}", "true")))
        series.append(Series("runc run (prepared bundle)", runc_cmd(bundle, runc_root, cgroup)))
        series.append(Series("pyctr version (CLI + 1 API call)", lambda i: [PYCTR, "version"], env))
        if ctrd is not None:
            series.append(Series("ctr version (CLI + 1 API call)", lambda i: ctrd.ctr("version")))

        for s in series:  # warm-up: page cache, first-use paths
            timed(s.cmd(-1), s.env)
        for i in range(args.runs):
            for s in series:
                s.times.append(timed(s.cmd(i), s.env))
            print(f"\rround {i + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)

        monitors = [conmon_monitors(d, env, ref, args.tasks)]
        if ctrd is not None:
            monitors.append(shim_monitors(ctrd, ref, args.tasks))

    report(series, monitors, args.runs, f"interleaved, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
