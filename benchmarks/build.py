"""Build benchmark: `docker build` (the classic builder API, DOCKER_BUILDKIT=0) on pyengined beside dockerd.

Both daemons pull the busybox test image from one local docker-registry (untimed) and build FROM it
(`--build-arg BASE=<that reference>`), driven by the same docker CLI. RUN steps use `--network none`
(the builders are compared, not the network stacks: benchmarks.engine measures those). Per daemon:

* `build`: a three-stage Dockerfile (ARG, ENV, WORKDIR, COPY, COPY --chown, COPY --from, RUN, USER,
  HEALTHCHECK, ENTRYPOINT) over a context of about 50 MB (a few dozen files of random data, half copied in
  each of the first two stages, both halves copied again into the last), with `--no-cache`;
* `cached`: the same build again without `--no-cache`, every step found in the cache;
* `rss`: how much the daemon's resident memory grows (peak, VmHWM, over VmRSS before the build; the
  peak is reset through /proc/PID/clear_refs first) during a build whose 1 GB context is copied whole
  into the image. For pyengined and dockerd alone; their runtime daemons (pyruntimed, containerd) are
  reported beside them.

Rounds are interleaved (one of each daemon per round) so background load hits both alike; medians.

    .venv/bin/python -m benchmarks.build [--runs 5] [--big-mb 1024] [--no-big]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.engine import Daemon, _child_named, pyengine
from benchmarks.run import check
from tests.fixtures import dockerd as reference
from tests.fixtures.images import busybox_image
from tests.fixtures.registry import Registry, push

DOCKERFILE = """\
ARG BASE
FROM ${BASE} AS tools
ARG GREETING=hello
ENV GREETING=${GREETING}
WORKDIR /src
COPY greet.sh .
COPY src/ ./blobs/
RUN chmod 755 greet.sh && echo "$GREETING" > message && du -s blobs > size

FROM ${BASE} AS data
COPY --chown=nobody:nobody data/ /data/
RUN ls -ln /data > /listing

FROM ${BASE}
COPY --from=tools /src /app
COPY --from=data /listing /app/listing
COPY --from=data /data /app/data
USER nobody
WORKDIR /app
HEALTHCHECK --interval=30s CMD true
ENTRYPOINT ["/app/greet.sh"]
"""

BIG_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY big/ /big/
RUN du -s /big
"""

GREET = '#!/bin/sh\necho "$(cat /app/message) from $(id -u)"\n'


def _random_files(directory: Path, count: int, total: int) -> None:
    directory.mkdir(parents=True)
    size = total // count
    for i in range(count):
        with open(directory / f"blob-{i:03d}.bin", "wb") as f:
            left = size
            while left:
                chunk = min(left, 1 << 24)
                f.write(os.urandom(chunk))
                left -= chunk


def three_stage_context(root: Path, megabytes: int = 50) -> Path:
    ctx = root / "three"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "greet.sh").write_text(GREET)
    half = megabytes * 1_000_000 // 2
    _random_files(ctx / "src", 20, half)
    _random_files(ctx / "data", 20, half)
    return ctx


def big_context(root: Path, megabytes: int) -> Path:
    ctx = root / "big"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(BIG_DOCKERFILE)
    _random_files(ctx / "big", 32, megabytes * (1 << 20))
    return ctx


@contextlib.contextmanager
def _dockerd(registry_host: str) -> Iterator[Daemon | None]:
    # No bridge: the builds' RUN steps use --network none, and dockerd fixtures of other jobs on this host
    # delete docker0 when they stop.
    if reference.missing() is not None:
        yield None
        return
    with reference.dockerd(["--insecure-registry", registry_host, *reference.NO_NETWORK]) as d:
        yield Daemon("dockerd", d.socket, d.env(), d.pid, lambda: _child_named(d.pid, "containerd"))


def _daemons(stack: contextlib.ExitStack) -> tuple[str, list[Daemon]]:
    reg = stack.enter_context(Registry())
    push(reg, "library/busybox", "latest", busybox_image())
    daemons = [stack.enter_context(pyengine(reg.host))]
    if (theirs := stack.enter_context(_dockerd(reg.host))) is not None:
        daemons.append(theirs)
    return f"{reg.host}/library/busybox:latest", daemons


def build(d: Daemon, ctx: Path, base: str, tag: str, *extra: str) -> float:
    cmd = d.docker("build", "-q", "--network", "none", "--build-arg", f"BASE={base}", "-t", tag, *extra,
                   str(ctx))
    env = dict(d.env, DOCKER_BUILDKIT="0")
    started = time.perf_counter()
    check(cmd, env, timeout=1800)
    return time.perf_counter() - started


def _status_kib(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


class PeakRSS:
    """A process's RSS growth over a block: VmHWM (reset at the start) and a 20 ms VmRSS sampler, whichever
    saw more, minus VmRSS at the start. KiB."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.before = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        assert self.pid is not None
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _status_kib(self.pid, "VmRSS"))

    def __enter__(self) -> PeakRSS:
        if self.pid is not None:
            with contextlib.suppress(OSError):
                Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.before = self.peak = _status_kib(self.pid, "VmRSS")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pid is None:
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kib(self.pid, "VmHWM"))

    @property
    def growth_mib(self) -> float:
        return max(0, self.peak - self.before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--context-mb", type=int, default=50, help="size of the three-stage build's context")
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the memory scenario's context, MiB")
    parser.add_argument("--no-big", action="store_true", help="skip the memory scenario")
    parser.add_argument("--only", choices=["pyengined", "dockerd"], help="one daemon only")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the daemons need it")
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-build-")))
        ctx = three_stage_context(work, args.context_mb)
        ref, daemons = _daemons(stack)
        if args.only:
            daemons = [d for d in daemons if d.name == args.only]
        for d in daemons:
            check(d.docker("pull", "-q", ref), d.env)
            build(d, ctx, ref, "bench:warm")  # warm-up, and the cache the cached rounds find
        for i in range(args.runs):
            for d in daemons:
                d.add("build", build(d, ctx, ref, f"bench:{i}", "--no-cache"))
            for d in daemons:
                d.add("cached", build(d, ctx, ref, "bench:cached"))
            print(f"\rround {i + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if not args.no_big:
            big = big_context(work, args.big_mb)
            for d in daemons:
                with PeakRSS(d.pid) as engine, PeakRSS(d.runtime_pid()) as runtime:
                    d.add("big", build(d, big, ref, "bench:big"))
                d.add("rss", engine.growth_mib)
                d.add("runtime_rss", runtime.growth_mib)
                check(d.docker("rmi", "bench:big"), d.env)
    report(daemons, args)


ROWS = [
    ("build", "three-stage build, {ctx} MB context, --no-cache", "s", "≤ 0.7x"),
    ("cached", "the same, fully cached", "s", "≤ 0.5x"),
    ("big", "build copying a {big} MiB context", "s", ""),
    ("rss", "  engine's peak RSS growth during it", "MiB", "< 64 MiB"),
    ("runtime_rss", "  its runtime daemon's (pyruntimed, containerd)", "MiB", ""),
]


def report(daemons: list[Daemon], args: argparse.Namespace) -> None:
    print(f"\nmedians of {args.runs} rounds (1 for the {args.big_mb} MiB build), {os.cpu_count()} CPUs")
    print(f"{'scenario':<52}" + "".join(f"{d.name:>14}" for d in daemons)
          + (f"{'ratio':>9}" if len(daemons) == 2 else "") + "  target")
    for key, label, unit, target in ROWS:
        if not all(key in d.results for d in daemons):
            continue
        values = [statistics.median(d.results[key]) for d in daemons]
        line = f"{label.format(ctx=args.context_mb, big=args.big_mb):<52}" + "".join(
            f"{v:>10.2f} {unit:<3}" for v in values)
        if len(values) == 2:
            line += f"{values[0] / values[1]:>8.2f}x" if values[1] else f"{'':>9}"
        print(f"{line}  {target}")


if __name__ == "__main__":
    main()
