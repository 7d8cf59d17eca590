from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import docker
import pytest

from tests.fixtures.daemons import EngineDaemon, RuntimeDaemon

pytest_plugins = ["tests.fixtures.conftest_plugin", "tests.fixtures.cri"]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture
def runtime_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeDaemon]:
    d = RuntimeDaemon(str(tmp_path_factory.mktemp("rt")))
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def pyctr_env(runtime_daemon: RuntimeDaemon) -> dict[str, str]:
    env = dict(os.environ)
    env["PYCTR_ADDRESS"] = runtime_daemon.address
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


@pytest.fixture
def engine(runtime_daemon: RuntimeDaemon) -> Iterator[EngineDaemon]:
    e = EngineDaemon(runtime_daemon)
    e.start()
    try:
        yield e
    finally:
        e.cleanup()


@pytest.fixture
def hub_engine(runtime_daemon: RuntimeDaemon, registry) -> Iterator[EngineDaemon]:
    """An engine whose Docker Hub mirror is the fixture registry, so `busybox` resolves offline."""
    e = EngineDaemon(runtime_daemon, extra_args=["--registry-mirror", f"http://{registry.host}"])
    e.start()
    try:
        yield e
    finally:
        e.cleanup()


@pytest.fixture
def sdk(engine: EngineDaemon) -> Iterator[docker.DockerClient]:
    """The Docker SDK pointed at the test's engine (modules may override `engine`)."""
    client = docker.DockerClient(base_url=engine.host)
    try:
        yield client
    finally:
        client.close()
