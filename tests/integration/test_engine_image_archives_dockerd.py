"""docker save / docker load between pyengined and the real dockerd 20.10, both ways, each image then run."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.archives import legacy_archive
from tests.fixtures.daemons import EngineDaemon
from tests.fixtures.dockerd import NO_NETWORK, Dockerd, dockerd, missing
from tests.fixtures.images import busybox_image
from tests.integration.test_engine_image_archives import engine, ok, rows, short

__all__ = ["engine"]

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"no reference daemon: {missing()}")


@pytest.fixture(scope="module")
def reference() -> Iterator[Dockerd]:
    with dockerd(NO_NETWORK) as d:
        yield d


def theirs(d: Dockerd, *args: str) -> str:
    out = subprocess.run(["docker", *args], env=d.env(), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, f"dockerd: docker {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def test_dockerd_save_loads_here_and_runs(engine: EngineDaemon, reference: Dockerd, tmp_path: Path) -> None:
    image = busybox_image()
    seed = tmp_path / "seed.tar"
    seed.write_bytes(legacy_archive(image, ["from-dockerd:1"]))
    assert theirs(reference, "load", "-i", str(seed)) == "Loaded image: from-dockerd:1\n"
    saved = tmp_path / "dockerd.tar"
    theirs(reference, "save", "-o", str(saved), "from-dockerd:1")

    assert ok(engine, "load", "-i", str(saved)) == "Loaded image: from-dockerd:1\n"
    assert rows(engine) == [f"from-dockerd:1 {short(image.config_digest)}"]
    assert ok(engine, "run", "--rm", "from-dockerd:1", "echo", "ran here") == "ran here\n"


def test_save_here_loads_into_dockerd_and_runs(engine: EngineDaemon, reference: Dockerd, tmp_path: Path,
                                               images) -> None:
    ok(engine, "pull", "busybox")
    ok(engine, "tag", "busybox", "from-pyengine:1")
    saved = tmp_path / "pyengine.tar"
    ok(engine, "save", "-o", str(saved), "from-pyengine:1")

    assert theirs(reference, "load", "-i", str(saved)) == "Loaded image: from-pyengine:1\n"
    listed = theirs(reference, "images", "--format", "{{.ID}}", "from-pyengine:1").split()
    assert listed == [short(images["library/busybox:latest"].config_digest)]
    assert theirs(reference, "run", "--rm", "--network", "none", "from-pyengine:1", "echo", "ran there") == \
        "ran there\n"


def test_a_layer_made_here_loads_into_dockerd(engine: EngineDaemon, reference: Dockerd, tmp_path: Path,
                                              images) -> None:
    # Compare writes gzip in independent blocks, stored where they do not compress: Go's reader must take it.
    ok(engine, "pull", "busybox")
    ok(engine, "run", "--name", "maker", "--network", "none", "busybox", "sh", "-c",
       "head -c 3000000 /dev/urandom > /noise && seq 1 300000 > /counted && md5sum /noise /counted > /sums")
    ok(engine, "commit", "maker", "made-here:1")
    ok(engine, "rm", "maker")
    saved = tmp_path / "made.tar"
    ok(engine, "save", "-o", str(saved), "made-here:1")

    assert theirs(reference, "load", "-i", str(saved)) == "Loaded image: made-here:1\n"
    assert theirs(reference, "run", "--rm", "--network", "none", "made-here:1", "sh", "-c", "md5sum -c /sums") == \
        "/noise: OK\n/counted: OK\n"
