"""Local volumes with driver options, and copy-up, as dockerd's local driver has them (docs/compatibility.md,
session 18): a bind-backed volume's host directory is the user's, never emptied by `volume rm` or `prune`; its
mount lasts while containers run; a copy-up fills it, and keeps the image directory's owner, mode and links."""
from __future__ import annotations

import io
import json
import os
import stat
import struct
import tarfile
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
    # A create of a name that exists answers that volume, whatever options it names (dockerd's).
    assert ok(engine, "volume", "create", "--opt", "type=nfs", "kv") == "kv\n"
    assert json.loads(ok(engine, "volume", "inspect", "kv"))[0]["Options"]["device"] == str(tmp_path)
    for _ in range(3):
        assert _run(engine, "-v", "kv:/d", "busybox", "cat", "/d/precious") == "kept\n"
    # Mounted while a container runs, never stacked, and down after the last one.
    assert _mounts_on(mountpoint) == 0
    # Its bytes are the host directory's: system df counts local volumes' own directories only, as dockerd.
    df = json.loads(containers.curl(engine, "GET", "/system/df")[2])
    assert "kv" not in [v["Name"] for v in df["Volumes"] or []]
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


def test_a_missing_bind_source_is_made_at_start_not_at_create(engine: EngineDaemon, tmp_path: Path) -> None:
    # A script may create the container, then put the file the bind names in place: dockerd makes the
    # directory only when the container starts.
    ok(engine, "create", "--name", "lazy", "--network", "none", "-v", f"{tmp_path}/conf:/c", "busybox", "cat", "/c")
    assert not (tmp_path / "conf").exists()
    (tmp_path / "conf").write_text("given\n")
    assert ok(engine, "start", "-a", "lazy") == "given\n"
    ok(engine, "create", "--name", "later", "--network", "none", "-v", f"{tmp_path}/dir:/d", "busybox", "ls", "/d")
    ok(engine, "start", "-a", "later")
    assert (tmp_path / "dir").is_dir()
    ok(engine, "create", "--name", "nowhere", "--network", "none", "-v", "/proc/nope/x:/c", "busybox")
    status, _, body = containers.curl(engine, "POST", "/containers/nowhere/start")
    assert status == 400 and "error while creating mount source path '/proc/nope/x'" in body, body
    ok(engine, "rm", "lazy", "later", "nowhere")


def _image_with_special_files(engine: EngineDaemon, tmp_path: Path) -> None:
    """An imported image whose /data holds a file with a capability and a user attribute, and a fifo."""
    cap_net_raw_ep = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)
    tar_path = tmp_path / "special.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("data", "bin"):
            tar.addfile(_dir(name))
        body = b"#!/bin/sh\n"
        f = tarfile.TarInfo("data/ping")
        f.size, f.mode = len(body), 0o755
        f.pax_headers = {"SCHILY.xattr.security.capability": cap_net_raw_ep.decode("utf-8", "surrogateescape"),
                         "SCHILY.xattr.user.note": "kept"}
        tar.addfile(f, io.BytesIO(body))
        fifo = tarfile.TarInfo("data/pipe")
        fifo.type, fifo.mode = tarfile.FIFOTYPE, 0o620
        tar.addfile(fifo)
    ok(engine, "import", "--change", "VOLUME /data", str(tar_path), "special:1")


def _dir(name: str) -> tarfile.TarInfo:
    d = tarfile.TarInfo(name)
    d.type, d.mode = tarfile.DIRTYPE, 0o755
    return d


def test_copy_up_keeps_file_capabilities_attributes_and_fifos(engine: EngineDaemon, tmp_path: Path) -> None:
    _image_with_special_files(engine, tmp_path)
    ok(engine, "create", "--name", "special", "--network", "none", "-v", "sv:/data", "special:1", "x")
    mountpoint = Path(json.loads(ok(engine, "volume", "inspect", "sv"))[0]["Mountpoint"])
    assert os.getxattr(mountpoint / "ping", "security.capability")[:8] == struct.pack("<2I", 0x02000001, 1 << 13)
    assert os.getxattr(mountpoint / "ping", "user.note") == b"kept"
    assert stat.S_ISFIFO((mountpoint / "pipe").lstat().st_mode)
    assert stat.S_IMODE((mountpoint / "pipe").lstat().st_mode) == 0o620
    ok(engine, "rm", "-v", "special")
    ok(engine, "volume", "rm", "sv")
    ok(engine, "rmi", "special:1")


def test_cp_with_a_stopped_container_reaches_a_volume_of_driver_options(engine: EngineDaemon, tmp_path: Path) -> None:
    device = tmp_path / "device"
    device.mkdir()
    (device / "there").write_text("on the device\n")
    (tmp_path / "given").write_text("copied\n")
    ok(engine, "volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={device}", "cpv")
    ok(engine, "create", "--name", "cpb", "--network", "none", "-v", "cpv:/b", "busybox", "ls", "/b")
    ok(engine, "cp", str(tmp_path / "given"), "cpb:/b/given")
    assert (device / "given").read_text() == "copied\n"
    assert "on the device" in ok(engine, "cp", "cpb:/b/there", "-")
    mountpoint = json.loads(ok(engine, "volume", "inspect", "cpv"))[0]["Mountpoint"]
    assert _mounts_on(mountpoint) == 0 and not os.listdir(mountpoint)
    assert ok(engine, "start", "-a", "cpb").split() == ["given", "there"]
    ok(engine, "rm", "cpb")
    ok(engine, "volume", "rm", "cpv")
