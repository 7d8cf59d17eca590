"""Image archive benchmark: `docker save` then `docker load` of the 134 MB test image, pyengined beside dockerd.

Both daemons pull the test image (`tests/fixtures/images.big_image`: busybox plus 5 layers of incompressible
data) from one local docker-registry; then, per round and daemon, the docker CLI saves it to a file, the image
is removed, and the CLI loads that file back. Wall times, median over the rounds.

    .venv/bin/python -m benchmarks.archives [--runs 3]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

from benchmarks.engine import Daemon, dockerd, pyengine
from benchmarks.run import check
from tests.fixtures.images import big_image
from tests.fixtures.registry import Registry, push


def _round(d: Daemon, ref: str, path: str) -> None:
    started = time.perf_counter()
    check(d.docker("save", "-o", path, ref), d.env, timeout=600)
    d.add("save", time.perf_counter() - started)
    check(d.docker("rmi", ref), d.env)
    started = time.perf_counter()
    check(d.docker("load", "-i", path), d.env, timeout=600)
    d.add("load", time.perf_counter() - started)
    d.add("both", d.results["save"][-1] + d.results["load"][-1])
    d.add("archive", os.path.getsize(path) / 1e6)
    os.unlink(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the daemons need it")
    image = big_image()
    with contextlib.ExitStack() as stack:
        reg = stack.enter_context(Registry())
        push(reg, "library/big", "latest", image)
        ref = f"{reg.host}/library/big:latest"
        daemons = [stack.enter_context(pyengine(reg.host))]
        if (theirs := stack.enter_context(dockerd(reg.host))) is not None:
            daemons.append(theirs)
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-archives-"))
        for d in daemons:
            check(d.docker("pull", "-q", ref), d.env, timeout=600)
        for i in range(args.runs):
            for d in daemons:
                _round(d, ref, os.path.join(work, f"{d.name}.tar"))
            print(f"\rround {i + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    print(f"\nmedians of {args.runs} rounds, {os.cpu_count()} CPUs, image {image.total_size / 1e6:.0f} MB")
    print(f"{'':<28}" + "".join(f"{d.name:>14}" for d in daemons) + ("    ratio" if len(daemons) == 2 else ""))
    for key, label, unit in (("save", "docker save -o", "s"), ("load", "docker load -i", "s"),
                             ("both", "save + load", "s"), ("archive", "archive size", "MB")):
        values = [statistics.median(d.results[key]) for d in daemons]
        line = f"{label:<28}" + "".join(f"{v:>11.2f} {unit:<2}" for v in values)
        if len(values) == 2 and values[1]:
            line += f"{values[0] / values[1]:>8.2f}x"
        print(line)


if __name__ == "__main__":
    main()
