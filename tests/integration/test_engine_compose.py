"""docker-compose 1.29 (Debian's) driving pyengined through a project's life: up, a changed config, scale,
exec, a one-off run and down."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon

PROJECT = """\
version: "2.4"
services:
  web:
    image: busybox
    command: ["sleep", "300"]
    environment:
      LEVEL: "{level}"
    volumes: ["/data"]
"""


@pytest.fixture
def engine(hub_engine: EngineDaemon) -> EngineDaemon:
    return hub_engine


def compose(engine: EngineDaemon, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker-compose", *args], cwd=project, env={**engine.env(), "COMPOSE_PROJECT_NAME": "cproj"},
                          capture_output=True, text=True, timeout=180, check=False)


def test_a_changed_config_recreates_and_scales(engine: EngineDaemon, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "docker-compose.yml").write_text(PROJECT.format(level=1))
    try:
        out = compose(engine, project, "up", "-d")
        assert out.returncode == 0, out.stderr
        # A second `up` with nothing changed leaves the container be.
        out = compose(engine, project, "up", "-d")
        assert out.returncode == 0 and "is up-to-date" in out.stderr, out.stderr
        # A changed config recreates it: compose reads the image's ContainerConfig for that, which
        # API 1.45 and later no longer have (dockerd 25 fails here with KeyError: 'ContainerConfig').
        (project / "docker-compose.yml").write_text(PROJECT.format(level=2))
        out = compose(engine, project, "up", "-d", "--scale", "web=2")
        assert out.returncode == 0 and "Recreating cproj_web_1" in out.stderr, out.stderr
        out = compose(engine, project, "exec", "-T", "--index", "2", "web", "sh", "-c", "echo $LEVEL")
        assert (out.returncode, out.stdout) == (0, "2\n"), out.stderr
        out = compose(engine, project, "run", "--rm", "-T", "web", "sh", "-c", "exit 7")
        assert out.returncode == 7, out.stderr
        out = compose(engine, project, "ps", "-q")
        assert len(out.stdout.split()) == 2
    finally:
        out = compose(engine, project, "down", "-v")
        assert out.returncode == 0, out.stderr
    names = subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=cproj"],
                           env=engine.env(), capture_output=True, text=True, check=True).stdout
    assert names == ""
