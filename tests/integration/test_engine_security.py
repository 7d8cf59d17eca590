"""Security defaults (issue 6): sockets, no plain TCP unless forced, Docker's container confinement."""
from __future__ import annotations

import grp
import json
import os
import socket
import subprocess
from pathlib import Path

from tests.fixtures.daemons import BIN, EngineDaemon, RuntimeDaemon
from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import ok

engine, no_leftovers = containers.engine, containers.no_leftovers
DOCKER_CAPS = "00000000a80425fb"  # Docker's 14 default capabilities


def status(engine: EngineDaemon, *args: str) -> dict[str, str]:
    out = ok(engine, "run", "--rm", "--network", "none", *args, "busybox", "cat", "/proc/self/status")
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_default_confinement_and_privileged_on_request(engine: EngineDaemon) -> None:
    default = status(engine)
    assert default["CapEff"].strip() == DOCKER_CAPS
    assert default["NoNewPrivs"].strip() == "0" and default["Seccomp"].strip() == "2"
    assert ok(engine, "run", "--rm", "--network", "none", "busybox", "cat", "/proc/keys") == ""  # masked
    privileged = status(engine, "--privileged")
    assert int(privileged["CapEff"], 16) > int(DOCKER_CAPS, 16)
    assert status(engine, "--security-opt", "no-new-privileges")["NoNewPrivs"].strip() == "1"
    assert status(engine, "--security-opt", "seccomp=unconfined")["Seccomp"].strip() == "0"


def test_exec_privileged_gets_every_capability(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "plain", "--network", "none", "busybox", "sleep", "300")

    def caps(*flags: str) -> int:
        out = ok(engine, "exec", *flags, "plain", "grep", "CapEff", "/proc/self/status")
        return int(out.split(":\t", 1)[1], 16)

    assert caps() == int(DOCKER_CAPS, 16)
    assert caps("--privileged") > int(DOCKER_CAPS, 16)
    assert caps() == int(DOCKER_CAPS, 16)  # the container's own set is untouched


def test_tcp_needs_tls_or_an_explicit_flag(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([str(BIN / "pyengined"), "-H", f"tcp://127.0.0.1:{port}", "--data-root",
                           str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec"), "--runtime-address",
                           str(tmp_path / "none.sock")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "without TLS" in proc.stderr


def test_socket_group_is_configurable(runtime_daemon: RuntimeDaemon, tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"group": "daemon"}))
    e = EngineDaemon(runtime_daemon, extra_args=["--config-file", str(config)])
    e.start()
    try:
        st = os.stat(e.address)
        assert st.st_mode & 0o777 == 0o660 and st.st_uid == 0 and st.st_gid == grp.getgrnam("daemon").gr_gid
    finally:
        e.cleanup()
