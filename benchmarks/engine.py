"""Engine benchmark: pyengined (over pyruntimed) and dockerd, driven by the same docker CLI in one run.

Both daemons get a fresh root and socket and pull the busybox test image from one local docker-registry.
Most scenarios run with `--network none`, so neither side pays for networking there. Measured, per daemon:

* `docker run --rm --network none busybox true`: start-to-exit wall time (interleaved rounds, median);
* `docker run --rm busybox true` on the default bridge (dockerd's docker0 with its iptables rules; pyengined's
  pyengine0 through netavark);
* `docker run -d -p 20000-20099:20000-20099 busybox sleep 1000`: the start's wall time, and the processes
  and RSS that the 100 published ports add on the host (dockerd starts a docker-proxy per port);
* 50 concurrent `docker run -d ... sleep 1000`: wall time until the last CLI returns;
* `docker exec C true` in a running container (median);
* a container writing 200 MB to stdout through attach (`docker run --rm ... head -c 200000000 /dev/zero`);
* `docker ps -a --size` with those 50 containers (each one's writable layer measured);
* a container printing a million short lines (`seq 1 1000000`): from `docker run -d` to its `docker wait`'s
  answer (the lines are in the log driver's files by then), and `docker logs` of them all;
* `GET /containers/json` with those 50 containers, 16 keep-alive connections, requests/s;
* `GET /_ping`, 16 keep-alive connections, requests/s.

The HTTP load comes from a small asyncio client in a separate process (the same client for both daemons),
so the absolute requests/s include its own cost on this 2-CPU machine; the ratio is what to read.

    .venv/bin/python -m benchmarks.engine [--runs 10] [--seconds 5] [--install]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from benchmarks.run import check, quiet, timed
from tests.fixtures import dockerd as reference
from tests.fixtures.daemons import EngineDaemon, RuntimeDaemon
from tests.fixtures.images import busybox_image
from tests.fixtures.registry import Registry, push

CONCURRENT = 50
ATTACH_BYTES = 200_000_000
LOG_LINES = 1_000_000


@dataclass
class Daemon:
    name: str
    socket: str
    env: dict[str, str]
    pid: int
    # The daemon's runtime: pyruntimed beside pyengined, the containerd that dockerd starts.
    runtime_pid: Callable[[], int | None] = lambda: None
    results: dict[str, list[float]] = field(default_factory=dict)

    def docker(self, *args: str) -> list[str]:
        return ["docker", *args]

    def add(self, key: str, value: float) -> None:
        self.results.setdefault(key, []).append(value)


# -- daemons ------------------------------------------------------------------------------------

@contextlib.contextmanager
def pyengine(registry_host: str) -> Iterator[Daemon]:
    rt = RuntimeDaemon()
    rt.log_level = "info"
    engine: EngineDaemon | None = None
    try:
        rt.start()
        engine = EngineDaemon(rt, extra_args=["--insecure-registry", registry_host])
        engine.log_level = "info"
        engine.start()
        assert engine.proc is not None
        runtime_pid = rt.proc.pid if rt.proc is not None else None
        yield Daemon("pyengined", engine.address, engine.env(), engine.proc.pid, lambda: runtime_pid)
    finally:
        if engine is not None:
            ids = quiet(["docker", "ps", "-aq"], engine.env()).stdout.split()
            if ids:
                quiet(["docker", "rm", "-f", *ids], engine.env(), timeout=300)
            engine.stop()
        rt.cleanup()


@contextlib.contextmanager
def dockerd(registry_host: str) -> Iterator[Daemon | None]:
    if reference.missing() is not None:
        yield None
        return
    with reference.dockerd(["--insecure-registry", registry_host]) as d:
        yield Daemon("dockerd", d.socket, d.env(), d.pid, lambda: _child_named(d.pid, "containerd"))


def side_by_side(stack: contextlib.ExitStack) -> tuple[str, list[Daemon]]:
    """A registry with the busybox test image, pyengined, and dockerd when it is installed: the image's
    reference and the daemons, all closed with `stack`."""
    reg = stack.enter_context(Registry())
    push(reg, "library/busybox", "latest", busybox_image())
    daemons = [stack.enter_context(pyengine(reg.host))]
    if (theirs := stack.enter_context(dockerd(reg.host))) is not None:
        daemons.append(theirs)
    return f"{reg.host}/library/busybox:latest", daemons


# -- HTTP load ----------------------------------------------------------------------------------

async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = head.lower()
    if b"transfer-encoding: chunked" in headers:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status
    marker = b"content-length:"
    at = headers.find(marker)
    if at >= 0:
        length = int(headers[at + len(marker):headers.index(b"\r\n", at)])
        await reader.readexactly(length)
    return status


async def _load(socket: str, path: str, connections: int, seconds: float) -> tuple[int, int]:
    request = f"GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: bench\r\n\r\n".encode()
    deadline = time.perf_counter() + seconds
    done = failed = 0

    async def worker() -> None:
        nonlocal done, failed
        reader, writer = await asyncio.open_unix_connection(socket)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                if await _read_response(reader) == 200:
                    done += 1
                else:
                    failed += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return done, failed


def _load_process(socket: str, path: str, connections: int, seconds: float,
                  out: "multiprocessing.Queue[object]") -> None:
    out.put(asyncio.run(_load(socket, path, connections, seconds)))


def throughput(d: Daemon, path: str, connections: int, seconds: float) -> float:
    """Requests/s from a separate process, so the load generator never shares the benchmark's interpreter."""
    queue: multiprocessing.Queue[object] = multiprocessing.Queue()
    p = multiprocessing.Process(target=_load_process, args=(d.socket, path, connections, seconds, queue))
    p.start()
    done, failed = queue.get(timeout=seconds + 60)  # type: ignore[misc]
    p.join()
    if failed:
        raise RuntimeError(f"{d.name}: {failed} failed requests to {path}")
    return done / seconds


# -- scenarios ----------------------------------------------------------------------------------

def concurrent_runs(d: Daemon, ref: str) -> float:
    started = time.perf_counter()
    procs = [subprocess.Popen(d.docker("run", "-d", "--network", "none", "--name", f"c{i}", ref, "sleep", "1000"),
                              env=d.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(CONCURRENT)]
    errors = [p.stderr.read().decode() for p in procs if p.wait() != 0 and p.stderr is not None]
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{d.name}: {len(errors)} of {CONCURRENT} runs failed: {errors[0].strip()}")
    return elapsed


def chatty(d: Daemon, ref: str) -> None:
    started = time.perf_counter()
    check(d.docker("run", "-d", "--network", "none", "--name", "chatty", ref, "sh", "-c",
                   f"seq 1 {LOG_LINES}"), d.env)
    check(d.docker("wait", "chatty"), d.env)
    d.add("chatty", time.perf_counter() - started)
    d.add("logs", timed(["sh", "-c", "docker logs chatty > /dev/null"], d.env))
    check(d.docker("rm", "chatty"), d.env)


def _host_processes() -> dict[int, int]:
    """pid -> RSS KiB of every process on the host."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError):
                out[int(entry)] = int(_status_field(int(entry), "VmRSS") or 0)
    return out


def _status_field(pid: int, name: str) -> str | None:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(name + ":"):
            return line.split()[1]
    return None


def published_range(d: Daemon, ref: str) -> float:
    before = _host_processes()
    elapsed = timed(d.docker("run", "-d", "--name", "ports", "-p", "20000-20099:20000-20099", ref, "sleep", "1000"),
                    d.env)
    time.sleep(0.5)
    after = _host_processes()
    added = {pid: rss for pid, rss in after.items() if pid not in before}
    d.add("ports_procs", len(added))
    d.add("ports_rss", sum(added.values()) / 1024)
    check(d.docker("rm", "-f", "ports"), d.env)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each HTTP load")
    parser.add_argument("--install", action="store_true", help="apt-get install containerd docker.io first")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: containers need it")
    if args.install:
        subprocess.run(["apt-get", "install", "-y", "-qq", "containerd", "docker.io"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)

    with contextlib.ExitStack() as stack:
        ref, daemons = side_by_side(stack)
        for d in daemons:
            check(d.docker("pull", "-q", ref), d.env)
            check(d.docker("run", "--rm", "--network", "none", ref, "true"), d.env)  # warm-up
        time.sleep(2)
        for d in daemons:
            runtime = d.runtime_pid()
            d.add("idle_rss", _rss_mib(d.pid) + (_rss_mib(runtime) if runtime else 0))

        for i in range(args.runs):
            for d in daemons:
                d.add("run", timed(d.docker("run", "--rm", "--network", "none", ref, "true"), d.env))
            print(f"\rrun round {i + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        for d in daemons:
            d.add("attach", timed(["sh", "-c", f"docker run --rm --network none {ref} head -c {ATTACH_BYTES} "
                                   "/dev/zero > /dev/null"], d.env))
        for d in daemons:
            # dockerd makes docker0 at its start; pyengined's bridge is made by its first container and kept.
            check(d.docker("run", "--rm", ref, "true"), d.env)
        for i in range(args.runs):
            for d in daemons:
                d.add("bridge", timed(d.docker("run", "--rm", ref, "true"), d.env))
        for d in daemons:
            d.add("ports", published_range(d, ref))
        for d in daemons:
            chatty(d, ref)
        for d in daemons:
            d.add("start50", concurrent_runs(d, ref))
            timed(d.docker("exec", "c0", "true"), d.env)
        for i in range(args.runs):
            for d in daemons:
                d.add("exec", timed(d.docker("exec", "c0", "true"), d.env))
        for _ in range(3):
            for d in daemons:
                d.add("ps_size", timed(d.docker("ps", "-a", "--size"), d.env))
        for d in daemons:
            d.add("ps", throughput(d, "/v1.41/containers/json", 16, args.seconds))
            d.add("ping", throughput(d, "/_ping", 16, args.seconds))
            d.add("rss", _rss_mib(d.pid))

    report(daemons, args.runs)


def _child_named(pid: int, name: str) -> int | None:
    with contextlib.suppress(OSError):
        for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
            if open(f"/proc/{child}/comm").read().strip() == name:
                return int(child)
    return None


def _rss_mib(pid: int) -> float:
    return int(_status_field(pid, "VmRSS") or 0) / 1024


ROWS = [
    ("run", "docker run --rm --network none busybox true", "s", "time"),
    ("bridge", "docker run --rm busybox true (default bridge)", "s", "time"),
    ("ports", "docker run -d -p 20000-20099:20000-20099", "s", "time"),
    ("ports_procs", "  processes it adds (monitor included)", "", "count"),
    ("ports_rss", "  RSS of those processes", "MiB", "size"),
    ("start50", f"{CONCURRENT} concurrent docker run -d", "s", "time"),
    ("exec", "docker exec C true", "s", "time"),
    ("attach", f"{ATTACH_BYTES // 1_000_000} MB to stdout through attach", "s", "time"),
    ("chatty", f"{LOG_LINES // 1_000_000}M log lines: run -d until wait answers", "s", "time"),
    ("logs", f"  docker logs of those {LOG_LINES // 1_000_000}M lines", "s", "time"),
    ("ps_size", f"docker ps -a --size, {CONCURRENT} containers", "s", "time"),
    ("ps", f"GET /containers/json, {CONCURRENT} containers, 16 conns", "req/s", "rate"),
    ("ping", "GET /_ping, 16 conns", "req/s", "rate"),
    ("rss", f"daemon RSS with {CONCURRENT} containers", "MiB", "size"),
    ("idle_rss", "idle RSS, engine + its runtime daemon", "MiB", "size"),
]


def report(daemons: list[Daemon], runs: int) -> None:
    names = [d.name for d in daemons]
    print(f"\nmedians ({runs} runs for run/exec, 1 for the rest), {os.cpu_count()} CPUs")
    header = f"{'scenario':<48}" + "".join(f"{n:>16}" for n in names)
    if len(daemons) == 2:
        header += f"{'ratio':>10}"
    print(header)
    for key, label, unit, kind in ROWS:
        values = [statistics.median(d.results[key]) for d in daemons]
        cells = "".join(f"{v:>10.3f} {unit:<5}" if unit == "s" else f"{v:>10.0f} {unit:<5}" for v in values)
        line = f"{label:<48}{cells}"
        if len(values) == 2 and values[1]:
            line += f"{values[0] / values[1]:>9.2f}x"
        print(line)


if __name__ == "__main__":
    main()
