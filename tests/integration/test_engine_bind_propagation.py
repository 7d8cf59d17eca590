"""Bind propagation checked against the host's mounts at start, as dockerd checks it: `rshared` needs a source on
a shared mount, `rslave` one on a shared or slave mount, else the start fails in dockerd's words."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, ok

engine, no_leftovers = containers.engine, containers.no_leftovers


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A private and a shared bind mount of their own directories, unmounted afterwards."""
    private, shared = tmp_path / "private", tmp_path / "shared"
    made = []
    try:
        for path, kind in ((private, "--make-private"), (shared, "--make-shared")):
            path.mkdir()
            _mount("--bind", str(path), str(path))
            made.append(path)
            _mount(kind, str(path))
        yield private, shared
    finally:
        for path in reversed(made):
            subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def test_propagation_needs_a_mount_that_can_propagate(engine, mounts) -> None:
    private, shared = mounts
    (private / "sub").mkdir()
    out = cli(engine, "run", "--rm", "-v", f"{private}/sub:/data:rshared", "busybox", "true")
    assert out.returncode == 125
    assert f"path {private}/sub is mounted on {private} but it is not a shared mount" in out.stderr
    out = cli(engine, "run", "--rm", "--mount", f"type=bind,source={private},target=/data,bind-propagation=rslave",
              "busybox", "true")
    assert out.returncode == 125
    assert f"path {private} is mounted on {private} but it is not a shared or slave mount" in out.stderr
    # private propagation asks nothing of the source's mount.
    assert ok(engine, "run", "--rm", "-v", f"{private}:/data:rprivate", "busybox", "echo", "ran") == "ran\n"
    for propagation in ("rshared", "rslave"):
        assert ok(engine, "run", "--rm", "-v", f"{shared}:/data:{propagation}", "busybox", "echo", "ran") == "ran\n"
    # Checked at each start, against the mounts as they are then: a created container fails to start.
    ok(engine, "create", "--name", "later", "-v", f"{private}:/data:rshared", "busybox", "true")
    out = cli(engine, "start", "later")
    assert out.returncode == 1 and "but it is not a shared mount" in out.stderr
