"""docker cp both ways, docker diff and docker export through pyengined, with the real CLI and the SDK."""
from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import pytest

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, ok

# The containers module's engine (busybox pulled) and its clean-up between tests.
engine, no_leftovers = containers.engine, containers.no_leftovers


def tar_bytes(*entries: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name: str, data: bytes | None = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode = kind, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
    if data is not None:
        ti.size = len(data)
    return ti, data


def put_raw(engine, container: str, path: str, body: bytes, tmp_path: Path) -> tuple[int, str, dict]:
    """PUT a tar as-is (curl, no client-side checks): (status, content type, JSON body)."""
    data = tmp_path / "upload.tar"
    data.write_bytes(body)
    out = subprocess.run(["curl", "-sS", "--unix-socket", engine.address, "-X", "PUT", "-o", "-",
                          "-w", "\n%{http_code} %{content_type}", "-H", "Content-Type: application/x-tar",
                          "--data-binary", f"@{data}", f"http://x/containers/{container}/archive?path={path}"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    text, _, tail = out.rpartition("\n")
    status, _, ctype = tail.partition(" ")
    return int(status), ctype, json.loads(text) if text.strip() else {}


def make_tree(base: Path) -> Path:
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "hello.txt").write_text("hello\n")
    (src / "sub" / "run.sh").write_text("#!/bin/sh\necho ran\n")
    os.chmod(src / "sub" / "run.sh", 0o755)
    os.symlink("hello.txt", src / "link")
    return src


# docker cp ------------------------------------------------------------------------


def test_cp_both_ways_on_a_running_container(engine, tmp_path):
    src = make_tree(tmp_path)
    ok(engine, "run", "-d", "--name", "cp1", "busybox", "sleep", "1000")
    ok(engine, "cp", str(src), "cp1:/tmp/")  # a dir into an existing dir
    ok(engine, "cp", str(src / "hello.txt"), "cp1:/tmp/renamed.txt")  # a file to a new name
    assert ok(engine, "exec", "cp1", "sh", "-c", "/tmp/src/sub/run.sh; cat /tmp/src/link /tmp/renamed.txt") == \
        "ran\nhello\nhello\n"
    assert ok(engine, "exec", "cp1", "busybox", "readlink", "/tmp/src/link") == "hello.txt\n"

    out = tmp_path / "out"
    out.mkdir()
    ok(engine, "cp", "cp1:/etc/passwd", str(out))
    assert (out / "passwd").read_text().startswith("root:x:0:0:")
    ok(engine, "cp", "cp1:/tmp/src", str(out / "copy"))  # a dir to a new name
    assert (out / "copy" / "hello.txt").read_text() == "hello\n"
    assert os.access(out / "copy" / "sub" / "run.sh", os.X_OK)
    assert os.readlink(out / "copy" / "link") == "hello.txt"
    ok(engine, "cp", "cp1:/tmp/src/.", str(out / "contents"))  # a dir's contents
    assert sorted(os.listdir(out / "contents")) == ["hello.txt", "link", "sub"]
    ok(engine, "exec", "cp1", "busybox", "ln", "-s", "/etc", "/tmp/etclink")
    ok(engine, "cp", "-L", "cp1:/tmp/etclink", str(out / "followed"))  # followed inside the container
    assert (out / "followed" / "passwd").exists()


def test_cp_on_a_stopped_container_and_after_start(engine, tmp_path):
    src = make_tree(tmp_path)
    ok(engine, "create", "--name", "cp2", "busybox", "cat", "/tmp/src/hello.txt", "/new.txt")
    ok(engine, "cp", str(src), "cp2:/tmp/")
    ok(engine, "cp", str(src / "hello.txt"), "cp2:/new.txt")
    ok(engine, "cp", "cp2:/tmp/src/hello.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "hello\n"
    assert ok(engine, "start", "-a", "cp2") == "hello\nhello\n"
    ok(engine, "cp", str(src / "sub" / "run.sh"), "cp2:/tmp/")  # exited now
    ok(engine, "cp", "cp2:/tmp/run.sh", str(tmp_path / "run.sh"))
    assert (tmp_path / "run.sh").read_text() == "#!/bin/sh\necho ran\n"
    # No temporary mount is left behind by copies of a stopped container. The CLI stops reading at
    # the tar's end marker, which comes before the HTTP body's end: the last one may take a moment.
    leftovers = Path(engine.runtime.state, "rootfs")
    deadline = time.monotonic() + 5
    while os.listdir(leftovers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(leftovers) == []


def test_cp_of_a_missing_path_fails_like_docker(engine, tmp_path):
    ok(engine, "create", "--name", "cp3", "busybox")
    out = cli(engine, "cp", "cp3:/nonexistent", str(tmp_path / "x"))
    assert out.returncode != 0
    assert "Could not find the file /nonexistent in container cp3" in out.stderr
    out = cli(engine, "cp", str(tmp_path), "cp3:/no/such/dir/")
    assert out.returncode != 0
    out = cli(engine, "cp", "nosuch:/etc/passwd", str(tmp_path / "x"))
    assert out.returncode != 0 and "No such container" in out.stderr


def test_cp_archive_mode_gives_files_to_the_container_user(engine, tmp_path):
    (tmp_path / "f").write_text("f")
    ok(engine, "run", "-d", "--name", "cp4", "--user", "65534", "busybox", "sleep", "1000")
    ok(engine, "cp", "-a", str(tmp_path / "f"), "cp4:/tmp/owned")
    ok(engine, "cp", str(tmp_path / "f"), "cp4:/tmp/kept")
    assert ok(engine, "exec", "cp4", "stat", "-c", "%u:%g", "/tmp/owned", "/tmp/kept") == \
        f"65534:65534\n{os.getuid()}:{os.getgid()}\n"


def test_cp_into_a_bind_mount_and_a_read_only_rootfs(engine, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (tmp_path / "f").write_text("into the volume\n")
    ok(engine, "run", "-d", "--name", "cp5", "--read-only", "-v", f"{vol}:/data", "busybox", "sleep", "1000")
    ok(engine, "cp", str(tmp_path / "f"), "cp5:/data/")
    assert (vol / "f").read_text() == "into the volume\n"
    assert ok(engine, "exec", "cp5", "cat", "/data/f") == "into the volume\n"
    out = cli(engine, "cp", str(tmp_path / "f"), "cp5:/tmp/")
    assert out.returncode != 0 and "read-only" in out.stderr


def test_sdk_put_archive_and_get_archive(engine, sdk):
    c = sdk.containers.run("busybox", ["sleep", "1000"], detach=True, name="cp6")
    data = tar_bytes(entry("dir/", None, tarfile.DIRTYPE), entry("dir/a.txt", b"from the sdk\n"))
    assert c.put_archive("/tmp", data) is True
    assert c.exec_run(["cat", "/tmp/dir/a.txt"]).output == b"from the sdk\n"
    stream, st = c.get_archive("/tmp/dir")
    assert st["name"] == "dir" and st["mode"] == (1 << 31) | 0o755 and st["linkTarget"] == ""
    tar = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
    assert sorted(tar.getnames()) == ["dir", "dir/a.txt"]
    assert tar.extractfile("dir/a.txt").read() == b"from the sdk\n"
    with pytest.raises(docker.errors.NotFound):
        c.get_archive("/nope")


def test_hostile_tar_put_is_400_and_writes_nothing_outside(engine, tmp_path):
    ok(engine, "run", "-d", "--name", "cp7", "busybox", "sleep", "1000")
    canary = tmp_path / "canary"
    canary.mkdir()
    rootfs_parents = Path(engine.runtime.base)
    cases = {
        "dotdot": [entry("../../../../../../../../../../" + str(canary).lstrip("/") + "/pwned", b"x")],
        "absolute": [entry(str(canary / "pwned"), b"x")],
        "symlink-then-write": [entry("evil", None, tarfile.SYMTYPE, str(canary)), entry("evil/pwned", b"x")],
        "hardlink-out": [entry("h", None, tarfile.LNKTYPE, "../../../../../../etc/shadow")],
        "device": [entry("null", None, tarfile.CHRTYPE)],
    }
    for case, entries in cases.items():
        status, ctype, body = put_raw(engine, "cp7", "/tmp", tar_bytes(*entries), tmp_path)
        assert (status, ctype) == (400, "application/json"), (case, body)
        assert body["message"].startswith("refusing archive entry "), body
        assert os.listdir(canary) == [], case
    assert ok(engine, "exec", "cp7", "ls", "-A", "/tmp") == ""  # refused whole: nothing written inside either
    assert not list(rootfs_parents.rglob("pwned"))


def test_existing_symlinks_in_the_container_cannot_lead_out(engine, tmp_path):
    canary = tmp_path / "canary"
    canary.mkdir()
    ok(engine, "run", "-d", "--name", "cp8", "busybox", "sleep", "1000")
    ok(engine, "exec", "cp8", "busybox", "ln", "-s", str(canary), "/tmp/out")
    ok(engine, "exec", "cp8", "busybox", "ln", "-s", "../../../../..", "/tmp/up")
    (tmp_path / "f").write_text("f")
    ok(engine, "cp", str(tmp_path / "f"), "cp8:/tmp/up/landed")  # '..' stops at the container's root
    assert ok(engine, "exec", "cp8", "cat", "/landed") == "f"
    out = cli(engine, "cp", str(tmp_path / "f"), "cp8:/tmp/out/")  # a host path, but only inside the container
    assert out.returncode != 0
    assert os.listdir(canary) == []


# docker diff / docker export -----------------------------------------------------------


def test_diff_shows_added_changed_and_deleted(engine):
    ok(engine, "run", "-d", "--name", "df1", "busybox", "sleep", "1000")
    ok(engine, "exec", "df1", "sh", "-c", "touch /tmp/new && echo x >> /etc/passwd && rm /etc/group")
    # Sorted by path, as dockerd does; the mount points runc made (/etc/hostname, ...) are left out.
    assert ok(engine, "diff", "df1").splitlines() == ["C /etc", "D /etc/group", "C /etc/passwd", "C /tmp", "A /tmp/new"]
    ok(engine, "stop", "-t", "0", "df1")
    assert "A /tmp/new" in ok(engine, "diff", "df1").splitlines()
    ok(engine, "create", "--name", "df2", "busybox")
    assert ok(engine, "diff", "df2") == ""


def test_export_is_a_tar_of_the_rootfs(engine, tmp_path):
    ok(engine, "run", "--name", "ex1", "busybox", "sh", "-c", "echo exported > /root/mark")
    ok(engine, "export", "-o", str(tmp_path / "ex1.tar"), "ex1")
    with tarfile.open(tmp_path / "ex1.tar") as tar:
        names = tar.getnames()
        assert "bin/busybox" in names and "etc/passwd" in names
        assert tar.extractfile("root/mark").read() == b"exported\n"
        assert tar.getmember("bin/busybox").mode & 0o111


def test_cp_of_the_root_names_entries_from_the_root(engine, tmp_path):
    ok(engine, "create", "--name", "whole", "busybox", "true")
    out = subprocess.run(["docker", "cp", "whole:/", "-"], env=engine.env(), capture_output=True, timeout=60,
                         check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        names = tar.getnames()
    # As dockerd: "/" itself, then "/bin", "/bin/busybox" (never "//bin").
    assert "/bin/busybox" in names and not any(n.startswith("//") for n in names)
