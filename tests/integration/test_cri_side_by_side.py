"""Docker and Kubernetes on one pyruntimed: pyengined's containers and the CRI's pods never see each other."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cri_api.v1 import api_pb2 as cri

from tests.fixtures.cri import CRI
from tests.fixtures.daemons import EngineDaemon
from tests.fixtures.registry import Registry

pytestmark = pytest.mark.timeout(300)
BIN = Path(sys.executable).parent


@pytest.fixture
def engine_beside_cri(cri_service: CRI, registry: Registry) -> Iterator[EngineDaemon]:
    e = EngineDaemon(cri_service.daemon, extra_args=["--registry-mirror", f"http://{registry.host}"])
    e.start()
    try:
        yield e
    finally:
        e.cleanup()


def _pyctr(c: CRI, namespace: str, *args: str) -> str:
    env = dict(os.environ, PYCTR_ADDRESS=c.daemon.address, PYCTR_NAMESPACE=namespace)
    return subprocess.run([str(BIN / "pyctr"), *args], env=env, capture_output=True, text=True, check=True,
                          timeout=60).stdout


def _docker(e: EngineDaemon, *args: str) -> str:
    return subprocess.run(["docker", *args], env=e.env(), capture_output=True, text=True, check=True,
                          timeout=120).stdout


def test_engine_and_cri_objects_stay_apart(cri_service: CRI, engine_beside_cri: EngineDaemon) -> None:
    c, e = cri_service, engine_beside_cri
    docker_id = _docker(e, "run", "-d", "--name", "dockerside", "busybox", "sleep", "300").strip()
    c.pull("busybox")
    pod_id, pod = c.run_pod("k8sside")
    cid = c.start_container(pod_id, pod, "k8sctr", ["sleep", "300"])

    docker_all = _docker(e, "ps", "-a", "-q", "--no-trunc").split()
    assert docker_id in docker_all and cid not in docker_all and pod_id not in docker_all
    cri_ids = {x.id for x in c.runtime.ListContainers(cri.ListContainersRequest()).containers}
    cri_pods = {x.id for x in c.runtime.ListPodSandbox(cri.ListPodSandboxRequest()).items}
    assert cri_ids == {cid} and cri_pods == {pod_id}

    k8s_images = _pyctr(c, "k8s.io", "images", "ls")
    assert "docker.io/library/busybox:latest" in k8s_images
    engine_ns = _pyctr(c, "pyengine", "containers", "ls")
    assert docker_id in engine_ns and cid not in engine_ns and pod_id not in engine_ns
    k8s_ns = _pyctr(c, "k8s.io", "containers", "ls")
    assert cid in k8s_ns and pod_id in k8s_ns and docker_id not in k8s_ns
    assert "busybox" in _pyctr(c, "pyengine", "images", "ls")

    # Removing on one side leaves the other alone.
    c.remove_all()
    assert docker_id in _docker(e, "ps", "-q", "--no-trunc")
    _docker(e, "rm", "-f", docker_id)
    c.pull("busybox")
    assert any("busybox" in t for i in c.images.ListImages(cri.ListImagesRequest()).images for t in i.repo_tags)
