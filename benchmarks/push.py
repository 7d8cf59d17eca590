"""Push benchmark: the >=128 MB, 6-layer test image to an empty local registry.

Each daemon first pulls the image from a source registry (not timed), then `docker push`es it (pyengined over
pyruntimed, and dockerd) or `ctr images push`es it (containerd) to a fresh registry on another port, so no blob
is there yet and none can be mounted. Prints the push's wall time and the daemons' peak RSS.

    .venv/bin/python -m benchmarks.push [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.pull import peak_rss_kib, timed, wait_for
from tests.fixtures.daemons import EngineDaemon, RuntimeDaemon, unmount_under
from tests.fixtures.images import big_image
from tests.fixtures.registry import Registry, push

Result = tuple[float, int]


def _docker_push(env: dict[str, str], source: str, target: str) -> float:
    subprocess.run(["docker", "pull", "-q", source], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["docker", "tag", source, target], check=True, env=env)
    return timed(["docker", "push", target], env)


def bench_pyengine(source: str, target: str) -> Result:
    rt = RuntimeDaemon()
    rt.log_level = "info"
    rt.start()
    engine = EngineDaemon(rt)
    engine.log_level = "info"
    try:
        engine.start()
        t = _docker_push(engine.env(), source, target)
        assert rt.proc is not None and engine.proc is not None
        return t, peak_rss_kib(rt.proc.pid) + peak_rss_kib(engine.proc.pid)
    finally:
        engine.cleanup()
        rt.cleanup()


def bench_dockerd(source: str, target: str) -> Result | None:
    if not shutil.which("dockerd") or not shutil.which("containerd"):
        return None
    base = tempfile.mkdtemp(prefix="bench-dockerd-")
    sock = f"{base}/docker.sock"
    proc = subprocess.Popen(
        ["dockerd", "--data-root", f"{base}/data", "--exec-root", f"{base}/exec", "-H", f"unix://{sock}",
         "--pidfile", f"{base}/docker.pid", "--bridge", "none", "--iptables=false", "--ip-masq=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    try:
        wait_for(lambda: subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0, 60)
        t = _docker_push(env, source, target)
        return t, peak_rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def bench_containerd(source: str, target: str) -> Result | None:
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
        ctr = ["ctr", "-a", sock, "images"]
        subprocess.run([*ctr, "pull", "--plain-http", source], check=True, stdout=subprocess.DEVNULL)
        t = timed([*ctr, "push", "--plain-http", target, source])
        return t, peak_rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    image = big_image()
    size_mb = sum(len(image.blobs[d]) for d in image.layer_digests) / 1e6
    results: dict[str, list[Result]] = {"pyengined": [], "dockerd": [], "containerd": []}
    benches = {"pyengined": bench_pyengine, "dockerd": bench_dockerd, "containerd": bench_containerd}
    with Registry() as source_registry:
        push(source_registry, "library/big", "latest", image)
        source = f"{source_registry.host}/library/big:latest"
        for _ in range(args.runs):
            for name, bench in benches.items():
                with Registry() as target_registry:
                    result = bench(source, f"{target_registry.host}/bench/big:latest")
                if result is not None:
                    results[name].append(result)
    print(f"push of {size_mb:.0f} MB in {len(image.layer_digests)} layers to an empty registry, "
          f"median of {args.runs} runs")
    print(f"{'daemon':<12}{'wall s':>10}{'peak RSS MiB':>15}")
    for name, rows in results.items():
        if rows:
            print(f"{name:<12}{statistics.median(t for t, _ in rows):>10.2f}"
                  f"{statistics.median(r for _, r in rows) / 1024:>15.1f}")
        else:
            print(f"{name:<12}{'not installed':>25}")


if __name__ == "__main__":
    main()
