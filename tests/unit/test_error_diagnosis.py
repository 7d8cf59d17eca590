"""The diagnosis modules behind the golden error suite, on inputs the suite does not build."""
from __future__ import annotations

import errno
import os
import socket
import sqlite3
import struct
import sys
from pathlib import Path

import pytest

from engine.networks import port_owner
from runtime import nospace
from runtime.remotes.rate_limit import rate_limited
from runtime.tasks import exec_diagnosis
from runtime.tasks.exec_diagnosis import diagnose


def _rootfs(tmp_path: Path, files: dict[str, bytes]) -> str:
    for name, data in files.items():
        path = tmp_path / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755)
    return str(tmp_path)


def _foreign_elf() -> bytes:
    head = bytearray(Path(sys.executable).resolve().read_bytes()[:64])
    machine = struct.unpack_from("<H", head, 18)[0]
    struct.pack_into("<H", head, 18, 183 if machine != 183 else 62)
    return bytes(head)


def test_symlinks_resolve_inside_the_rootfs(tmp_path: Path) -> None:
    root = _rootfs(tmp_path / "root", {"/real/tool": b"#!/bin/missing\n"})
    # An absolute link target is the rootfs's, never the host's /usr/bin/env.
    (tmp_path / "root" / "usr" / "bin").mkdir(parents=True)
    os.symlink("/real/tool", tmp_path / "root" / "usr" / "bin" / "env")
    why = diagnose(root, {"args": ["env"], "env": ["PATH=/usr/bin"]})
    assert why is not None and why.startswith("exec env: no such file or directory: /usr/bin/env exists, but its "
                                              "interpreter /bin/missing")


def test_an_env_shebang_with_a_carriage_return_is_left_to_runc(tmp_path: Path) -> None:
    # The kernel runs /usr/bin/env fine; env itself then fails on "sh\r", inside the container.
    root = _rootfs(tmp_path, {"/usr/bin/env": Path("/bin/busybox").read_bytes() if Path("/bin/busybox").exists()
                              else Path(sys.executable).resolve().read_bytes()[:4096],
                              "/run.sh": b"#!/usr/bin/env sh\r\n"})
    assert diagnose(root, {"args": ["/run.sh"]}) is None


def test_relative_programs_resolve_against_cwd_and_missing_ones_are_runcs(tmp_path: Path) -> None:
    root = _rootfs(tmp_path, {"/app/start": b"plain text\n"})
    assert diagnose(root, {"args": ["./start"], "cwd": "/app"}) is not None
    assert diagnose(root, {"args": ["nowhere"], "env": ["PATH=/bin"]}) is None
    assert diagnose(root, {"args": []}) is None


def test_a_binfmt_misc_handler_takes_foreign_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _rootfs(tmp_path / "root", {"/foreign": _foreign_elf()})
    assert "exec format error" in (diagnose(root, {"args": ["/foreign"]}) or "")
    binfmt = tmp_path / "binfmt"
    binfmt.mkdir()
    (binfmt / "status").write_text("enabled\n")
    (binfmt / "register").write_text("")
    head = _foreign_elf()[:20]
    (binfmt / "qemu-foreign").write_text(
        "enabled\ninterpreter /usr/bin/qemu-foreign\nflags: F\noffset 0\n"
        f"magic {head.hex()}\nmask {'ff' * 20}\n")
    monkeypatch.setattr(exec_diagnosis, "_BINFMT", binfmt)
    assert diagnose(root, {"args": ["/foreign"]}) is None
    (binfmt / "status").write_text("disabled\n")
    assert diagnose(root, {"args": ["/foreign"]}) is not None


def test_the_holder_of_a_port_is_this_process() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        holders = port_owner.find("tcp", port)
    assert [(h.pid, h.address) for h in holders] == [(os.getpid(), f"127.0.0.1:{port}")]
    assert port_owner.find("tcp", port) == []


def test_ipv6_addresses_read_from_proc_net() -> None:
    assert port_owner._address("00000000000000000000000001000000") == "[::1]"
    assert port_owner._address("0100007F") == "127.0.0.1"


def test_a_full_filesystem_is_named_with_its_room(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "blob"))
    err = nospace.explain(full)
    assert err is not None and err.message.startswith(f"no space left on device: {tmp_path / 'blob'}: the "
                                                      f"filesystem holding {tmp_path} (mounted at ")
    assert " free of " in err.message
    assert nospace.explain(OSError(errno.EIO, "I/O error")) is None
    assert nospace.explain(ValueError("x")) is None


def test_sqlite_full_names_the_fullest_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nospace.Directories, "paths", (str(tmp_path),))
    db = sqlite3.connect(":memory:")
    try:
        db.execute("PRAGMA max_page_count = 1")
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (randomblob(100000))")
    except sqlite3.OperationalError as e:
        full = e
    else:
        pytest.fail("SQLite did not fill up")
    err = nospace.explain(full)
    assert err is not None and err.message.startswith(
        f"no space left on device: database or disk is full (the metadata database): the filesystem holding "
        f"{tmp_path}")


def test_a_rate_limit_without_retry_after_says_so() -> None:
    err = rate_limited("r.example", "manifest r.example/x:1", "", None, authenticated=True)
    assert err.message == ("toomanyrequests: too many requests: r.example rate-limits requests (HTTP 429) for "
                           "manifest r.example/x:1; it sent no Retry-After: wait before pulling again")
    at = rate_limited("r.example", "m", "toomanyrequests: slow down", 90, now=0).message
    assert at.endswith("it asks to retry after 90s (at 00:01:30 UTC); anonymous pulls have lower limits: "
                       "`docker login` may raise yours")


def test_what_a_mount_will_cover_is_not_judged(tmp_path: Path) -> None:
    # runc bind-mounts the init over an empty placeholder; a volume may hold the interpreter.
    root = _rootfs(tmp_path, {"/sbin/init": b"", "/app/run.py": b"#!/opt/py/bin/python\n"})
    assert diagnose(root, {"args": ["/sbin/init"]}) is not None
    assert diagnose(root, {"args": ["/sbin/init"]}, ["/sbin/init"]) is None
    assert diagnose(root, {"args": ["/app/run.py"]}, ["/opt/py/"]) is None
    assert diagnose(root, {"args": ["/app/run.py"]}, ["/opt/python"]) is not None


def test_a_file_no_one_may_execute_is_left_to_runcs_permission_denied(tmp_path: Path) -> None:
    root = _rootfs(tmp_path, {"/etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"})
    (tmp_path / "etc" / "passwd").chmod(0o644)
    # runc's "permission denied" is the exit code 126 dockerd gives; the file's content does not matter.
    assert diagnose(root, {"args": ["/etc/passwd"]}) is None
    (tmp_path / "etc" / "passwd").chmod(0o744)
    assert diagnose(root, {"args": ["/etc/passwd"]}) is not None
