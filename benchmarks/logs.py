"""Logs benchmark: `docker logs --since 1m` on a container with 1 GB of json-file logs, pyengined and dockerd.

Each daemon runs a container once, so it has a json-file log at inspect's LogPath; the benchmark
then writes 1 GB of json-file lines there (a week of output, a line every 60 ms or so, the last
minute's about 100 KB) and times the CLI reading the last minute, which a daemon can only answer
fast by seeking to it. Both daemons read the same bytes.

    .venv/bin/python -m benchmarks.logs [--runs 5] [--size-mib 1024]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

from benchmarks.engine import Daemon, side_by_side
from benchmarks.run import check, timed

_SPAN = 7 * 24 * 3600  # seconds of output the file covers


def write_log(path: str, size: int) -> int:
    """`size` bytes of json-file lines spread evenly over the last week, ending now; how many lines."""
    payload = "x" * 60
    sample = len(json.dumps({"log": f"{0:010d} {payload}\n", "stream": "stdout",
                             "time": "2026-01-01T00:00:00.000000000Z"}, separators=(",", ":"))) + 1
    lines = size // sample
    end = time.time_ns()
    step = _SPAN * 10**9 // lines
    with open(path, "w") as f:
        chunk = []
        for i in range(lines):
            ns = end - (lines - i) * step
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"
            chunk.append(f'{{"log":"{i:010d} {payload}\\n","stream":"stdout","time":"{stamp}"}}\n')
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return lines


def measure(d: Daemon, ref: str, size: int, runs: int) -> tuple[float, int]:
    check(d.docker("pull", "-q", ref), d.env)
    check(d.docker("run", "--name", "biglog", "--network", "none", "--log-opt", "max-size=2g", ref, "true"), d.env)
    path = check(d.docker("inspect", "--format", "{{.LogPath}}", "biglog"), d.env).strip()
    write_log(path, size)
    out = check(d.docker("logs", "--since", "1m", "biglog"), d.env)
    lines = len(out.splitlines())
    times = [timed(["sh", "-c", "docker logs --since 1m biglog > /dev/null"], d.env) for _ in range(runs)]
    os.unlink(path)
    return statistics.median(times), lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: containers need it")
    size = args.size_mib * 1024 * 1024
    results = []
    with contextlib.ExitStack() as stack:
        ref, daemons = side_by_side(stack)
        for d in daemons:
            seconds, lines = measure(d, ref, size, args.runs)
            results.append((d.name, seconds, lines))
    print(f"docker logs --since 1m over {args.size_mib} MiB of json-file logs (median of {args.runs}):")
    for name, seconds, lines in results:
        print(f"  {name:10s} {seconds * 1000:8.1f} ms  ({lines} lines)")


if __name__ == "__main__":
    main()
