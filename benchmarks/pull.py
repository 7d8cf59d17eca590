"""Pull benchmark: the >=128 MB, 5-layer test image into a fresh root.

Runs pyruntimed (through pyctr) and, when installed, containerd (ctr) and dockerd
(docker CLI) against the same local docker-registry, each into a fresh root, and
prints wall time and the daemon's peak RSS. `--install` installs Debian's
containerd and docker.io first (never done by the tests).

    .venv/bin/python -m benchmarks.pull [--runs 3] [--install]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from tests.fixtures.daemons import RuntimeDaemon, unmount_under
from tests.fixtures.images import big_image
from tests.fixtures.registry import Registry, push

BIN = Path(sys.executable).parent


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError("daemon did not come up")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def bench_pyengine(ref: str) -> tuple[float, int]:
    d = RuntimeDaemon()
    d.start()
    try:
        env = dict(os.environ, PYCTR_ADDRESS=d.address)
        t = timed([str(BIN / "pyctr"), "images", "pull", ref], env)
        assert d.proc is not None
        return t, peak_rss_kib(d.proc.pid)
    finally:
        d.cleanup()


def bench_containerd(ref: str) -> tuple[float, int] | None:
    if not shutil.which("containerd") or not shutil.which("ctr"):
        return None
    base = tempfile.mkdtemp(prefix="bench-containerd-")
    sock = f"{base}/c.sock"
    cfg = Path(base, "config.toml")
    cfg.write_text(f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n[grpc]\naddress = "{sock}"\n')
    proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(sock))
        time.sleep(0.3)
        t = timed(["ctr", "-a", sock, "images", "pull", "--plain-http", ref])
        return t, peak_rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def bench_dockerd(ref: str, registry_host: str) -> tuple[float, int] | None:
    if not shutil.which("dockerd") or not shutil.which("containerd"):
        return None
    base = tempfile.mkdtemp(prefix="bench-dockerd-")
    sock = f"{base}/docker.sock"
    proc = subprocess.Popen(
        ["dockerd", "--data-root", f"{base}/data", "--exec-root", f"{base}/exec", "-H", f"unix://{sock}",
         "--pidfile", f"{base}/docker.pid", "--insecure-registry", registry_host, "--bridge", "none",
         "--iptables=false", "--ip-masq=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    try:
        wait_for(lambda: subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0, 60)
        t = timed(["docker", "pull", "-q", ref], env)
        return t, peak_rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--install", action="store_true", help="apt-get install containerd docker.io first")
    args = parser.parse_args()
    if args.install:
        subprocess.run(["apt-get", "install", "-y", "-qq", "containerd", "docker.io"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
    image = big_image()
    size_mb = sum(len(image.blobs[d]) for d in image.layer_digests) / 1e6
    with Registry() as reg:
        push(reg, "library/big", "latest", image)
        ref = f"{reg.host}/library/big:latest"
        results: dict[str, list[tuple[float, int]]] = {"pyruntimed": [], "containerd": [], "dockerd": []}
        for _ in range(args.runs):
            results["pyruntimed"].append(bench_pyengine(ref))
            if (r := bench_containerd(ref)) is not None:
                results["containerd"].append(r)
            if (r := bench_dockerd(ref, reg.host)) is not None:
                results["dockerd"].append(r)
    print(f"pull of {size_mb:.0f} MB in {len(image.layer_digests)} layers, median of {args.runs} runs")
    print(f"{'daemon':<12}{'wall s':>10}{'peak RSS MiB':>15}")
    for name, rows in results.items():
        if rows:
            print(f"{name:<12}{statistics.median(t for t, _ in rows):>10.2f}"
                  f"{statistics.median(r for _, r in rows) / 1024:>15.1f}")
        else:
            print(f"{name:<12}{'not installed':>25}")


if __name__ == "__main__":
    main()
