"""dockerd's experimental mode (`--experimental`, daemon.json `experimental`): reported by /version, /info and the
Docker-Experimental header of every answer; a build's squash is refused without it in dockerd's words and, with
it, makes the target stage's layers one on top of its base's."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


@pytest.fixture(scope="module")
def experimental(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    config = tmp_path_factory.mktemp("cfg") / "daemon.json"
    config.write_text(json.dumps({"experimental": True}))
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host,
                         extra_args=["--config-file", str(config)]) as e:
        yield e


def cli(engine: EngineDaemon, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env={**engine.env(), "DOCKER_BUILDKIT": "0"}, capture_output=True,
                          text=True, timeout=60, check=False, cwd=cwd)


def curl(engine: EngineDaemon, *args: str) -> str:
    return subprocess.run(["curl", "-sS", "--unix-socket", engine.address, *args], capture_output=True, text=True,
                          timeout=30, check=True).stdout


def ping_header(engine: EngineDaemon) -> str:
    out = curl(engine, "-I", "http://x/_ping")
    headers = dict(line.split(": ", 1) for line in out.splitlines()[1:] if ": " in line)
    return {k.lower(): v for k, v in headers.items()}["docker-experimental"].strip()


@pytest.mark.parametrize("mode", ["plain", "experimental"])
def test_the_mode_is_reported_everywhere(mode: str, request: pytest.FixtureRequest) -> None:
    engine: EngineDaemon = request.getfixturevalue(mode)
    on = mode == "experimental"
    version = json.loads(curl(engine, "http://x/v1.50/version"))
    assert version["Experimental"] is on
    # The CLI shows the flag from the same field.
    assert cli(engine, "version", "--format", "{{.Server.Experimental}}").stdout.strip() == str(on).lower()
    assert version["Components"][0]["Details"]["Experimental"] == str(on).lower()
    assert cli(engine, "info", "--format", "{{.ExperimentalBuild}}").stdout.strip() == str(on).lower()
    assert ping_header(engine) == str(on).lower()


def test_squash_is_gated_as_dockerd_gates_it(plain, experimental, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n")
    # The CLI reads the mode from the ping's header and refuses by itself; the API refuses in dockerd's words.
    refused = cli(plain, "build", "--squash", "-t", "squashed", ".", cwd=tmp_path)
    assert refused.returncode == 1
    assert '"--squash" is only supported on a Docker daemon with experimental features enabled' in refused.stderr
    subprocess.run(["tar", "-cf", str(tmp_path / "ctx.tar"), "Dockerfile"], cwd=tmp_path, check=True)
    answer = curl(plain, "-X", "POST", "-H", "Content-Type: application/x-tar", "--data-binary",
                  f"@{tmp_path / 'ctx.tar'}", "http://x/v1.50/build?squash=1&t=squashed")
    assert json.loads(answer) == {"message": "squash is only supported with experimental mode"}
    plain_build = cli(experimental, "build", "-q", "-t", "layered", ".", cwd=tmp_path)
    assert plain_build.returncode == 0, plain_build.stderr
    squashed = cli(experimental, "build", "-q", "--squash", "-t", "squashed", ".", cwd=tmp_path)
    assert squashed.returncode == 0, squashed.stderr
    base, layered, image = (json.loads(cli(experimental, "image", "inspect", name).stdout)[0]
                            for name in ("busybox", "layered", "squashed"))
    # The two RUN layers are one on top of the base's; the history keeps every step and says what was merged.
    assert image["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    assert len(image["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
    assert len(layered["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 2
    out = cli(experimental, "run", "--rm", "squashed", "cat", "/a", "/b")
    assert out.stdout == "a\nb\n", out.stderr
    doc = json.loads(curl(experimental, "http://x/v1.50/images/squashed/history"))
    assert doc[0]["Comment"] == f"merge {layered['Id']} to {base['Id']}"
    assert [h["Size"] == 0 for h in doc[:3]] == [False, True, True]  # the merge entry holds the layer
