"""Volumes, binds and tmpfs mounts (issue 5) with the real docker CLI."""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine = containers.engine


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def run(engine: EngineDaemon, *args: str) -> str:
    return ok(engine, "run", "--rm", "--network", "none", *args)


def test_named_volume_keeps_data_across_containers(engine: EngineDaemon) -> None:
    run(engine, "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert run(engine, "-v", "data:/data", "busybox", "cat", "/data/f") == "kept\n"
    v = json.loads(ok(engine, "volume", "inspect", "data"))[0]
    assert v["Driver"] == "local" and v["Mountpoint"].endswith("/data/_data") and v["CreatedAt"]
    assert Path(v["Mountpoint"], "f").read_text() == "kept\n"
    assert "data" in ok(engine, "volume", "ls", "-q").split()


def test_new_volume_is_filled_from_the_image(engine: EngineDaemon) -> None:
    # busybox's /etc has passwd: a new volume mounted there starts with the image's files.
    assert "root:" in run(engine, "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd")
    ok(engine, "volume", "create", "empty")
    Path(json.loads(ok(engine, "volume", "inspect", "empty"))[0]["Mountpoint"], "mine").write_text("x")
    # A volume that has content is not filled again.
    listing = run(engine, "-v", "empty:/etc", "busybox", "ls", "/etc").split()
    assert "mine" in listing and "passwd" not in listing


def test_volume_in_use_and_rm(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "user", "-v", "busy:/data", "busybox", "sleep", "100")
    refused = cli(engine, "volume", "rm", "busy")
    assert refused.returncode != 0 and "volume is in use" in refused.stderr
    ok(engine, "rm", "-f", "user")
    ok(engine, "volume", "rm", "busy")
    missing = cli(engine, "volume", "rm", "busy")
    assert missing.returncode != 0 and "no such volume" in missing.stderr


def test_anonymous_volumes_go_with_rm_v(engine: EngineDaemon) -> None:
    ok(engine, "create", "--name", "anon", "-v", "/scratch", "busybox", "true")
    mounts = json.loads(ok(engine, "inspect", "anon"))[0]["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and mounts[0]["Destination"] == "/scratch"
    name = mounts[0]["Name"]
    assert name in ok(engine, "volume", "ls", "-q").split()
    ok(engine, "rm", "-v", "anon")
    assert name not in ok(engine, "volume", "ls", "-q").split()


def test_read_only_bind_refuses_writes(engine: EngineDaemon, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("host\n")
    out = cli(engine, "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/h:ro", "busybox", "sh", "-c",
              "cat /h/f; echo no > /h/f")
    assert out.stdout == "host\n" and out.returncode != 0 and "Read-only file system" in out.stderr
    assert (tmp_path / "f").read_text() == "host\n"
    run(engine, "--mount", f"type=bind,source={tmp_path},target=/h", "busybox", "sh", "-c", "echo rw > /h/g")
    assert (tmp_path / "g").read_text() == "rw\n"


def test_mount_syntax_refuses_a_missing_bind_source_and_v_creates_it(engine: EngineDaemon, tmp_path: Path) -> None:
    refused = cli(engine, "run", "--rm", "--mount", f"type=bind,source={tmp_path}/nope,target=/x", "busybox", "true")
    assert refused.returncode == 125 and "does not exist" in refused.stderr
    run(engine, "-v", f"{tmp_path}/made:/x", "busybox", "true")
    assert os.path.isdir(tmp_path / "made")


def test_tmpfs_mounts(engine: EngineDaemon) -> None:
    out = run(engine, "--tmpfs", "/t:size=8m,mode=1777", "busybox", "sh", "-c",
              "grep ' /t ' /proc/mounts; stat -c %a /t")
    assert "tmpfs /t tmpfs" in out and "size=8192k" in out and out.strip().endswith("1777")
    # Mount flags and tmpfs's parameters only, in dockerd's words; podman's `tmpcopyup` is not taken and ignored.
    for spec, words in (("/t:bogus", '["bogus"]'), ("/t:tmpcopyup", '["tmpcopyup"]'), ("/t:foo=1", '["foo" "1"]')):
        refused = cli(engine, "create", "--tmpfs", spec, "busybox")
        assert refused.returncode != 0 and f"invalid tmpfs option {words}" in refused.stderr, refused
    out = run(engine, "--mount", "type=tmpfs,target=/m,tmpfs-size=4m", "busybox", "grep", " /m ", "/proc/mounts")
    assert "size=4096k" in out
    out = run(engine, "--mount", "type=tmpfs,target=/m,readonly", "busybox", "grep", " /m ", "/proc/mounts")
    assert out.split()[3].startswith("ro,")
    ok(engine, "create", "--name", "tm", "--mount", "type=tmpfs,target=/m", "busybox")
    assert json.loads(ok(engine, "inspect", "tm"))[0]["Mounts"] == [
        {"Type": "tmpfs", "Source": "", "Destination": "/m", "Mode": "", "RW": True, "Propagation": ""}]
    ok(engine, "rm", "tm")

    # TmpfsOptions.Options (API 1.46), which the docker CLI has no flag for.
    def create(options: list[list[str]]) -> tuple[int, str]:
        body = {"Image": "busybox", "Cmd": ["grep", " /m ", "/proc/mounts"], "HostConfig": {"NetworkMode": "none",
                "Mounts": [{"Type": "tmpfs", "Target": "/m", "TmpfsOptions": {"Options": options}}]}}
        status, _, text = curl(engine, "POST", "/containers/create?name=topts", json.dumps(body))
        return status, text

    assert create([["exec"], ["uid", "1000"]])[0] == 201
    mount_options = ok(engine, "start", "-a", "topts").split()[3].split(",")
    assert "uid=1000" in mount_options and "noexec" not in mount_options
    ok(engine, "rm", "topts")
    for bad in ([["uid", "1,exec"]], [["bogus"]], [["size"]], [["a", "b", "c"]]):
        status, text = create(bad)
        assert status == 400 and "invalid tmpfs option" in text, (bad, text)


def test_bad_volume_input(engine: EngineDaemon) -> None:
    bad = cli(engine, "volume", "create", "a/b")
    assert bad.returncode != 0 and "invalid characters" in bad.stderr
    assert cli(engine, "volume", "inspect", "nosuch").returncode != 0
    assert cli(engine, "run", "--rm", "--mount", "type=volume,target=relative", "busybox", "true").returncode == 125


def test_system_df_and_prune(engine: EngineDaemon) -> None:
    run(engine, "-v", "dfvol:/d", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /d/z")
    df = json.loads(ok(engine, "system", "df", "-v", "--format", "{{json .}}"))
    vols = {v["Name"]: v for v in df["Volumes"]}
    assert "dfvol" in vols
    # The CLI 28 speaks API 1.50, where prune leaves named volumes unless asked for all.
    assert "dfvol" not in ok(engine, "volume", "prune", "-f")
    pruned = ok(engine, "volume", "prune", "-af")
    assert "dfvol" in pruned
    assert "dfvol" not in ok(engine, "volume", "ls", "-q").split()


def test_update_is_for_cluster_volumes_only(engine: EngineDaemon) -> None:
    """dockerd outside a swarm: 503 before it reads the version or the body (moby's putVolumesUpdate)."""
    ok(engine, "volume", "create", "upd")
    for path in ("/v1.41/volumes/upd?version=1", "/volumes/nosuch"):
        status, ctype, body = containers.curl(engine, "PUT", path, '{"Spec": {"Availability": "pause"}}')
        assert (status, ctype, json.loads(body)) == (
            503, "application/json",
            {"message": "volume update only valid for cluster volumes, but swarm is unavailable"})


def _pins(engine: EngineDaemon) -> list[str]:
    root = os.path.join(engine.base, "exec", "volume-subpaths")
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(root)]


def test_volume_subpath_mounts_only_that_part(engine: EngineDaemon) -> None:
    run(engine, "-v", "sub:/data", "busybox", "sh", "-c", "mkdir -p /data/a/b && echo in-a > /data/a/f && "
        "ln -s / /data/a/escape && ln -s .. /data/a/b/up && echo top > /data/top")
    ok(engine, "create", "--name", "later", "--network", "none",
       "--mount", "type=volume,src=sub,dst=/m,volume-subpath=later", "busybox", "cat", "/m/x")

    def at(subpath: str, *args: str) -> str:
        return run(engine, "--mount", f"type=volume,src=sub,dst=/m,volume-subpath={subpath}", "busybox", *args)

    assert sorted(at("a", "ls", "/m").split()) == ["b", "escape", "f"]
    assert at("a/b/up", "cat", "/m/f") == "in-a\n"  # a link that stays inside the volume is followed
    assert run(engine, "--mount", "type=volume,src=sub,dst=/one,volume-subpath=a/f", "busybox", "cat", "/one") == \
        "in-a\n"
    assert "top" not in at("a", "ls", "/m")
    out = cli(engine, "run", "--rm", "--mount", "type=volume,src=sub,dst=/m,volume-subpath=a,readonly", "busybox",
              "touch", "/m/new")
    assert out.returncode != 0 and "Read-only file system" in out.stderr
    for subpath, message in (("a/escape", "path concatenation escapes the base directory"),
                             ("a/b/up/escape", "path concatenation escapes the base directory"),
                             ("nosuch", "cannot access path")):
        out = cli(engine, "run", "--rm", "--mount", f"type=volume,src=sub,dst=/m,volume-subpath={subpath}",
                  "busybox", "true")
        assert out.returncode != 0 and message in out.stderr, (subpath, out.stderr)
    out = cli(engine, "run", "--rm", "--mount", "type=volume,src=sub,dst=/m,volume-subpath=../x", "busybox", "true")
    assert out.returncode != 0 and "subpath must be a relative path within the volume" in out.stderr

    # What the subpath is, is looked at when the container starts, not when it was made.
    run(engine, "-v", "sub:/data", "busybox", "sh", "-c", "mkdir /data/later && echo made > /data/later/x")
    assert ok(engine, "start", "-a", "later") == "made\n"
    ok(engine, "run", "--name", "heir", "--network", "none", "--volumes-from", "later", "busybox", "cat", "/m/x")
    assert ok(engine, "logs", "heir") == "made\n"
    # A copied volume's mode is dockerd's "", not its source's "z".
    assert json.loads(ok(engine, "inspect", "-f", "{{json .Mounts}}", "heir"))[0]["Mode"] == ""
    assert _pins(engine) == []
    ok(engine, "rm", "later", "heir")
    assert os.listdir(os.path.join(engine.base, "exec", "volume-subpaths")) == []


def test_a_mount_gives_a_new_volume_its_labels_and_driver_options(engine: EngineDaemon) -> None:
    opts = "volume-label=team=db,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs"
    out = run(engine, "--mount", f"type=volume,src=lab,dst=/l,{opts}", "busybox", "grep", " /l ", "/proc/mounts")
    assert out.startswith("tmpfs /l tmpfs")
    v = json.loads(ok(engine, "volume", "inspect", "lab"))[0]
    assert v["Labels"] == {"team": "db"} and v["Options"] == {"type": "tmpfs", "device": "tmpfs"}
    # An existing volume is used as it is, as dockerd uses it.
    run(engine, "--mount", "type=volume,src=lab,dst=/l,volume-label=other=1", "busybox", "true")
    assert json.loads(ok(engine, "volume", "inspect", "lab"))[0]["Labels"] == {"team": "db"}
    out = cli(engine, "run", "--rm", "--mount", "type=volume,src=plug,dst=/p,volume-driver=nfs", "busybox", "true")
    assert out.returncode != 0 and 'plugin "nfs" not found' in out.stderr
    ok(engine, "volume", "rm", "lab")


@pytest.fixture
def submounted(tmp_path: Path) -> Iterator[Path]:
    """A directory with a tmpfs mounted at `sub` below it."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src / "sub")], check=True)
    yield src
    subprocess.run(["umount", str(src / "sub")], check=True)


def test_read_only_binds_are_read_only_all_the_way_down(engine: EngineDaemon, submounted: Path) -> None:
    src = submounted
    probe = ["sh", "-c", "touch /d/top 2>/dev/null && echo top; touch /d/sub/f 2>/dev/null && echo sub; true"]
    bind = f"type=bind,src={src},dst=/d,readonly"
    assert run(engine, "-v", f"{src}:/d:ro", "busybox", *probe) == ""
    assert run(engine, "--mount", bind, "busybox", *probe) == ""
    assert run(engine, "--mount", f"{bind},bind-recursive=readonly,bind-propagation=rprivate", "busybox",
               *probe) == ""
    assert run(engine, "--mount", f"{bind},bind-recursive=writable", "busybox", *probe) == "sub\n"
    assert run(engine, "--mount", f"{bind},bind-recursive=disabled", "busybox", *probe) == ""  # no submount

    # A client of an API before 1.44 gets the read-only binds of its time.
    body = {"Image": "busybox", "Cmd": probe, "HostConfig": {"Binds": [f"{src}:/d:ro"], "NetworkMode": "none"}}
    status, _, text = curl(engine, "POST", "/v1.43/containers/create?name=old", json.dumps(body))
    assert status == 201, text
    assert ok(engine, "start", "-a", "old") == "sub\n"
    body["HostConfig"] = {"Mounts": [{"Type": "bind", "Source": str(src), "Target": "/d", "ReadOnly": True,
                                      "BindOptions": {"ReadOnlyForceRecursive": True}}]}
    status, _, text = curl(engine, "POST", "/v1.43/containers/create", json.dumps(body))
    assert status == 400 and "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer" in text
    # What the docker CLI checks before it asks, the daemon checks too.
    for bind_options, read_only, message in (
            ({"ReadOnlyForceRecursive": True, "Propagation": "rshared"}, True,
             "option 'ReadOnlyForceRecursive' requires 'BindOptions.Propagation' to be 'rprivate'"),
            ({"ReadOnlyNonRecursive": True}, False, "option 'ReadOnlyNonRecursive' requires 'ReadOnly' to be set")):
        body["HostConfig"] = {"Mounts": [{"Type": "bind", "Source": str(src), "Target": "/d",
                                          "ReadOnly": read_only, "BindOptions": bind_options}]}
        status, _, text = curl(engine, "POST", "/containers/create", json.dumps(body))
        assert status == 400 and message in text, text
    ok(engine, "rm", "old")


def test_bind_modes_as_dockerd_reads_them(engine: EngineDaemon, tmp_path: Path) -> None:
    src = tmp_path / "m"
    src.mkdir()
    for mode in ("rwo", "ro,rw", "nocopy"):
        out = cli(engine, "run", "--rm", "-v", f"{src}:/c:{mode}", "busybox", "true")
        assert out.returncode == 125 and ("invalid mode" in out.stderr or "VolumeOptions" in out.stderr), out.stderr
    probe = ["sh", "-c", "touch /c/f 2>/dev/null && echo writable; true"]
    assert run(engine, "-v", f"{src}:/c:ro,Z", "busybox", *probe) == ""
    assert run(engine, "-v", f"{src}:/c:z,rprivate", "busybox", *probe) == "writable\n"
    # --volumes-from C:rw never makes what C has read-only writable.
    ok(engine, "create", "--name", "rosrc", "-v", f"{src}:/c:ro", "busybox")
    assert run(engine, "--volumes-from", "rosrc:rw", "busybox", *probe) == ""
    ok(engine, "rm", "rosrc")


def test_an_rshared_bind_carries_mounts_back_to_the_host(engine: EngineDaemon, tmp_path: Path) -> None:
    src = tmp_path / "shared"
    src.mkdir()
    subprocess.run(["mount", "--bind", str(src), str(src)], check=True)
    subprocess.run(["mount", "--make-shared", str(src)], check=True)
    try:
        run(engine, "--privileged", "-v", f"{src}:/s:rshared", "busybox", "sh", "-c",
            "mkdir /s/in && mount -t tmpfs tmpfs /s/in && touch /s/in/made")
        assert (src / "in" / "made").exists()
    finally:
        subprocess.run(["umount", "-R", str(src)], check=True)


def test_volumes_from_keeps_a_binds_read_only_depth(engine: EngineDaemon, submounted: Path) -> None:
    src = submounted
    probe = ["sh", "-c", "touch /d/sub/f 2>/dev/null && echo sub; true"]
    ok(engine, "create", "--name", "deep", "-v", f"{src}:/d:ro", "busybox")
    ok(engine, "create", "--name", "shallow", "--mount",
       f"type=bind,src={src},dst=/d,readonly,bind-recursive=writable", "busybox")
    assert run(engine, "--volumes-from", "deep", "busybox", *probe) == ""
    assert run(engine, "--volumes-from", "shallow", "busybox", *probe) == "sub\n"
    ok(engine, "rm", "deep", "shallow")
