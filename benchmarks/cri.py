"""CRI benchmark: pyruntimed's CRI plugin beside containerd 1.6's, both driven by the same gRPC client.

Each runtime gets a private root, socket and registry mirrors pointing at one local docker-registry
seeded with busybox and the pause stand-in. Measured per runtime:
  - one pod: RunPodSandbox + CreateContainer + StartContainer, wall time (median of --runs, the runtimes
    taking turns, both running throughout);
  - 30 pods started 10 at a time (threads), wall time;
  - memory per running pod: the RSS of the per-pod processes outside the daemon (pyruntimed: the
    conmon monitors and the pause process; containerd: its runc shim and the pause process).
Pods use the node's network by default, so the numbers are the runtimes', not the CNI plugins';
`--network cni` gives both the same bridge conflist instead.

    .venv/bin/python -m benchmarks.cri [--runs 5] [--network host|cni]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
from cri_api.v1 import api_pb2 as cri
from cri_api.v1 import api_pb2_grpc

from tests.fixtures.daemons import RuntimeDaemon, unmount_under
from tests.fixtures.images import busybox_image, pause_image
from tests.fixtures.registry import Registry, push

SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"


class Target:
    def __init__(self, name: str, endpoint: str, processes: Callable[[], list[int]]) -> None:
        self.name = name
        channel = grpc.insecure_channel(f"unix://{endpoint}")
        self.channel = channel
        self.runtime = api_pb2_grpc.RuntimeServiceStub(channel)
        self.images = api_pb2_grpc.ImageServiceStub(channel)
        self.pod_processes = processes


def wait_ready(t: Target, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            t.runtime.Version(cri.VersionRequest(), timeout=2)
            return
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def pod_config(name: str, log_dir: str, host_network: bool) -> cri.PodSandboxConfig:
    config = cri.PodSandboxConfig(metadata=cri.PodSandboxMetadata(name=name, namespace="bench", uid=f"uid-{name}"),
                                  log_directory=os.path.join(log_dir, name))
    # As the kubelet sends a pod without shareProcessNamespace (the proto's zero value, POD, shares one).
    config.linux.security_context.namespace_options.pid = cri.CONTAINER
    if host_network:
        # containerd sets a given hostname even in the node's UTS namespace, which runc refuses.
        config.linux.security_context.namespace_options.network = cri.NODE
    else:
        config.hostname = name
    return config


def start_pod(t: Target, name: str, log_dir: str, host_network: bool) -> str:
    pod = pod_config(name, log_dir, host_network)
    pod_id = t.runtime.RunPodSandbox(cri.RunPodSandboxRequest(config=pod)).pod_sandbox_id
    config = cri.ContainerConfig(metadata=cri.ContainerMetadata(name="main"),
                                 image=cri.ImageSpec(image="docker.io/library/busybox:latest"),
                                 command=["sleep", "3600"], log_path="main.log")
    config.linux.security_context.namespace_options.pid = cri.CONTAINER
    cid = t.runtime.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                                               sandbox_config=pod)).container_id
    t.runtime.StartContainer(cri.StartContainerRequest(container_id=cid))
    return pod_id


def remove_all(t: Target) -> None:
    for p in t.runtime.ListPodSandbox(cri.ListPodSandboxRequest()).items:
        t.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=p.id))
        t.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=p.id))


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_named(names: tuple[str, ...], marker: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmd and any(n in cmd.split(" ")[0] for n in names):
            out.append(int(d.name))
    return out


def pause_pids() -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(b"/pause"):
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def prepare(t: Target) -> None:
    t.images.PullImage(cri.PullImageRequest(image=cri.ImageSpec(image="docker.io/library/busybox:latest")))
    t.images.PullImage(cri.PullImageRequest(image=cri.ImageSpec(image=SANDBOX_IMAGE)))


def one_pod(t: Target, name: str, log_dir: str, host_network: bool) -> float:
    started = time.perf_counter()
    start_pod(t, name, log_dir, host_network)
    took = time.perf_counter() - started
    remove_all(t)
    return took


def thirty_pods(t: Target, log_dir: str, host_network: bool) -> dict[str, float]:
    before = set(pause_pids())
    started = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda i: start_pod(t, f"many{i}", log_dir, host_network), range(30)))
    many = time.perf_counter() - started
    time.sleep(1)
    pauses = [p for p in pause_pids() if p not in before]
    per_pod = (sum(rss_kib(p) for p in t.pod_processes()) + sum(rss_kib(p) for p in pauses)) / 30
    remove_all(t)
    return {"thirty_pods_s": many, "per_pod_kib": per_pod}


def measure(targets: list[Target], runs: int, log_dir: str, host_network: bool) -> dict[str, dict[str, float]]:
    """Single pods in interleaved rounds (one per runtime per round, so background load falls on both alike),
    then each runtime's 30 pods, in alternating order."""
    for t in targets:
        prepare(t)
        remove_all(t)
    singles: dict[str, list[float]] = {t.name: [] for t in targets}
    for i in range(runs + 1):
        for t in targets if i % 2 == 0 else reversed(targets):
            took = one_pod(t, f"one{i}", log_dir, host_network)
            if i:  # the first round warms both up
                singles[t.name].append(took)
    results = {t.name: {"one_pod_s": statistics.median(singles[t.name])} for t in targets}
    for t in targets:
        results[t.name].update(thirty_pods(t, log_dir, host_network))
    return results


@contextmanager
def pyruntimed(registry: Registry, cni_conf: str | None) -> Iterator[Target]:
    d = RuntimeDaemon()
    extra = f'[cri]\ncni_conf_dir = "{cni_conf}"\n' if cni_conf else ""
    d.config = d.write_config(f'[registry.mirrors]\n"docker.io" = ["http://{registry.host}"]\n'
                              f'"registry.k8s.io" = ["http://{registry.host}"]\n' + extra)
    d.log_level = "warning"
    d.start()
    try:
        t = Target("pyruntimed", d.cri_address, lambda: children_named(("conmon",), d.base))
        wait_ready(t)
        yield t
        t.channel.close()
    finally:
        d.cleanup()


@contextmanager
def containerd(registry: Registry, cni_conf: str | None) -> Iterator[Target | None]:
    if not shutil.which("containerd"):
        yield None
        return
    base = tempfile.mkdtemp(prefix="bench-containerd-cri-")
    sock = os.path.join(base, "containerd.sock")
    conf_dir = cni_conf or os.path.join(base, "cni")
    os.makedirs(conf_dir, exist_ok=True)
    cfg = Path(base, "config.toml")
    cfg.write_text(f'''version = 2
root = "{base}/root"
state = "{base}/state"
[grpc]
  address = "{sock}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # This kernel refuses to lower oom_score_adj (kubelet asks -998 for sandboxes) even for root.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{conf_dir}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["http://{registry.host}"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]
    endpoint = ["http://{registry.host}"]
''')
    proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(base, "containerd.log"), "w"))
    try:
        t = Target("containerd", sock, lambda: children_named(("containerd-shim",), base))
        wait_ready(t)
        yield t
        t.channel.close()
    finally:
        proc.terminate()
        proc.wait(30)
        for pid in children_named(("containerd-shim",), base):
            os.kill(pid, 9)
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--network", choices=["host", "cni"], default="host")
    args = parser.parse_args()
    registry = Registry().start()
    log_dir = tempfile.mkdtemp(prefix="bench-cri-logs-")
    cni_conf = None
    try:
        push(registry, "library/busybox", "latest", busybox_image())
        push(registry, "pause", "3.10", pause_image())
        if args.network == "cni":
            cni_conf = tempfile.mkdtemp(prefix="bench-cni-")
            Path(cni_conf, "10-bench.conflist").write_text(json.dumps(bench_conflist(cni_conf)))
        with ExitStack() as stack:
            targets = [t for runtime in (pyruntimed, containerd)
                       if (t := stack.enter_context(runtime(registry, cni_conf))) is not None]
            results = measure(targets, args.runs, log_dir, args.network == "host")
        print(json.dumps(results, indent=2))
        if "containerd" in results:
            ours, theirs = results["pyruntimed"], results["containerd"]
            for key in ours:
                print(f"{key}: {ours[key]:.3f} vs {theirs[key]:.3f} = {ours[key] / theirs[key]:.2f}x")
    finally:
        registry.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
        if cni_conf:
            shutil.rmtree(cni_conf, ignore_errors=True)


def bench_conflist(conf_dir: str) -> dict:
    return {"cniVersion": "1.0.0", "name": "bench", "plugins": [
        {"type": "bridge", "bridge": "cnibench0", "isGateway": True, "ipMasq": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.251.0.0/16"}]],
                  "dataDir": os.path.join(conf_dir, "ipam")}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}


if __name__ == "__main__":
    main()
