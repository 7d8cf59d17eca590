"""Local volumes with driver options, and copy-up, as dockerd's local driver has them (docs/compatibility.md,
session 18): a bind-backed volume's host directory is the user's, never emptied by `volume rm` or `prune`; its
mount lasts while containers run; a copy-up fills it, and keeps the image directory's owner, mode and links."""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import ok
from tests.integration.test_engine_volumes import run as _run

engine, no_leftovers = containers.engine, containers.no_leftovers


def _mounts_on(path: str) -> int:
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split()[4] == path)


def test_a_bind_backed_volume_leaves_the_host_directory_alone(engine: EngineDaemon, tmp_path: Path) -> None:
    (tmp_path / "precious").write_text("kept\n")
    ok(engine, "volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={tmp_path}", "kv")
    mountpoint = json.loads(ok(engine, "volume", "inspect", "kv"))[0]["Mountpoint"]
    for _ in range(3):
        assert _run(engine, "-v", "kv:/d", "busybox", "cat", "/d/precious") == "kept\n"
    # Mounted while a container runs, never stacked, and down after the last one.
    assert _mounts_on(mountpoint) == 0
    # An option volume is never pruned (it may be a share of data kept elsewhere), and removing it keeps the files.
    out = json.loads(containers.curl(engine, "POST", "/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D")[2])
    assert "kv" not in (out["VolumesDeleted"] or [])
    ok(engine, "volume", "rm", "kv")
    assert (tmp_path / "precious").read_text() == "kept\n"


def test_a_tmpfs_volume_starts_empty_at_each_first_use(engine: EngineDaemon) -> None:
    ok(engine, "volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=1m", "tv")
    _run(engine, "-v", "tv:/d", "busybox", "touch", "/d/f")
    assert _run(engine, "-v", "tv:/d", "busybox", "ls", "/d") == ""


def test_copy_up_fills_a_bind_backed_volume(engine: EngineDaemon, tmp_path: Path) -> None:
    ok(engine, "volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={tmp_path}", "bv")
    assert "root:" in _run(engine, "-v", "bv:/etc", "busybox", "cat", "/etc/passwd")
    assert (tmp_path / "passwd").exists()
    ok(engine, "volume", "rm", "bv")
    assert (tmp_path / "passwd").exists()


def test_copy_up_keeps_the_directorys_owner_mode_and_links(engine: EngineDaemon) -> None:
    ok(engine, "run", "--network", "none", "--name", "src", "busybox", "sh", "-c",
       "mkdir /data && echo x > /data/a && ln /data/a /data/b && chown -R 1000:1000 /data && chmod 700 /data")
    ok(engine, "commit", "--change", "USER 1000", "--change", "VOLUME /data", "src", "owned:1")
    assert _run(engine, "-v", "own:/data", "owned:1", "sh", "-c", "touch /data/w && stat -c '%a %u %g' /data") == \
        "700 1000 1000\n"
    mountpoint = json.loads(ok(engine, "volume", "inspect", "own"))[0]["Mountpoint"]
    assert os.stat(Path(mountpoint, "a")).st_ino == os.stat(Path(mountpoint, "b")).st_ino
    assert _run(engine, "-v", "tmpvol:/tmp", "busybox", "stat", "-c", "%a", "/tmp") == "1777\n"
    ok(engine, "rm", "src")
    ok(engine, "rmi", "owned:1")


def test_bind_sources_are_shown_clean(engine: EngineDaemon, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    ok(engine, "create", "--name", "binds", "-v", f"{tmp_path}/a/:/p/", "-v", f"{tmp_path}/a/../b:/q", "busybox")
    sources = {m["Destination"]: m["Source"] for m in json.loads(ok(engine, "inspect", "binds"))[0]["Mounts"]}
    assert sources == {"/p": f"{tmp_path}/a", "/q": f"{tmp_path}/b"}
    ok(engine, "rm", "binds")


def test_an_inherited_anonymous_volume_goes_with_its_last_user(engine: EngineDaemon) -> None:
    ok(engine, "create", "--name", "first", "-v", "/p", "busybox")
    ok(engine, "create", "--name", "heir", "--volumes-from", "first", "busybox")
    name = json.loads(ok(engine, "inspect", "first"))[0]["Mounts"][0]["Name"]
    ok(engine, "rm", "-v", "first")
    assert name in ok(engine, "volume", "ls", "-q").split()  # still used by the heir
    ok(engine, "rm", "-v", "heir")
    assert name not in ok(engine, "volume", "ls", "-q").split()


def test_cp_reaches_a_never_started_containers_volume_where_the_image_has_no_directory(engine: EngineDaemon,
                                                                                          tmp_path: Path) -> None:
    (tmp_path / "seed").write_text("seeded\n")
    ok(engine, "create", "--name", "fresh", "--network", "none", "-v", "seeds:/mnt/a", "busybox", "cat", "/mnt/a/seed")
    ok(engine, "cp", str(tmp_path / "seed"), "fresh:/mnt/a/seed")
    assert ok(engine, "start", "-a", "fresh") == "seeded\n"
    mountpoint = json.loads(ok(engine, "volume", "inspect", "seeds"))[0]["Mountpoint"]
    assert Path(mountpoint, "seed").read_text() == "seeded\n"
    ok(engine, "rm", "-v", "fresh")
