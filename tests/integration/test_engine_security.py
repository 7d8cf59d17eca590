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


def test_default_confinement_and_privileged_on_request(engine: EngineDaemon, tmp_path: Path) -> None:
    default = status(engine)
    assert default["CapEff"].strip() == DOCKER_CAPS
    assert default["NoNewPrivs"].strip() == "0" and default["Seccomp"].strip() == "2"
    assert ok(engine, "run", "--rm", "--network", "none", "busybox", "cat", "/proc/keys") == ""  # masked
    privileged = status(engine, "--privileged")
    assert int(privileged["CapEff"], 16) > int(DOCKER_CAPS, 16)
    assert status(engine, "--security-opt", "no-new-privileges")["NoNewPrivs"].strip() == "1"
    assert status(engine, "--security-opt", "seccomp=unconfined")["Seccomp"].strip() == "0"
    # The last seccomp option counts, as dockerd reads them; a privileged container has no filter at all.
    profile = tmp_path / "profile.json"  # the docker CLI sends the file's content
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    assert status(engine, "--security-opt", "seccomp=unconfined", "--security-opt",
                  f"seccomp={profile}")["Seccomp"].strip() == "2"
    assert status(engine, "--privileged", "--security-opt", f"seccomp={profile}")["Seccomp"].strip() == "0"
    assert status(engine, "--security-opt", "seccomp=builtin")["Seccomp"].strip() == "2"


def test_a_seccomp_profile_is_json_never_a_path_on_the_daemons_host(engine: EngineDaemon) -> None:
    status_code, _, body = containers.curl(engine, "POST", "/containers/create", json.dumps(
        {"Image": "busybox", "HostConfig": {"SecurityOpt": ["seccomp=/etc/passwd"]}}))
    assert status_code == 400 and "Decoding seccomp profile failed" in json.loads(body)["message"]


def test_exec_as_another_user_keeps_the_containers_groups(engine: EngineDaemon) -> None:
    ok(engine, "run", "-d", "--name", "grouped", "--network", "none", "--group-add", "3000", "busybox", "sleep", "300")
    assert "3000" in ok(engine, "exec", "grouped", "id", "-G").split()
    assert "3000" in ok(engine, "exec", "-u", "0", "grouped", "id", "-G").split()
    assert "3000" in ok(engine, "exec", "-u", "nobody", "grouped", "id", "-G").split()


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


def _refused_start(e: EngineDaemon) -> str:
    out = subprocess.run(e.command(), capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and not os.path.exists(e.address), out
    return out.stderr


def test_configuration_keys_the_engine_does_not_know_stop_the_start(runtime_daemon: RuntimeDaemon,
                                                                    tmp_path: Path) -> None:
    # Taken and ignored, dockerd's `userns-remap` would be believed in force: refused by name, as dockerd does.
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"userns-remap": "default", "ip6tables": True}))
    e = EngineDaemon(runtime_daemon, extra_args=["--config-file", str(config)])
    assert "the following directives don't match any configuration option: ip6tables, userns-remap" in _refused_start(e)
    for group, words in (("nosuchgroup", "group nosuchgroup not found"),):
        config.write_text(json.dumps({"group": group}))
        assert words in _refused_start(e) and "Traceback" not in _refused_start(e)
    config.write_text(json.dumps({"log-level": "verbose"}))
    assert "unable to parse logging level: verbose" in _refused_start(e)


def test_default_ulimits_a_group_by_number_and_dockerds_level_names(runtime_daemon: RuntimeDaemon, registry,
                                                                   tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    gid = grp.getgrnam("daemon").gr_gid
    config.write_text(json.dumps({"group": str(gid), "log-level": "warn",
                                  "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 2048, "Hard": 4096}},
                                  "default-shm-size": "128M", "no-new-privileges": True, "init": True}))
    e = EngineDaemon(runtime_daemon, extra_args=["--config-file", str(config), "--registry-mirror",
                                                 f"http://{registry.host}"])
    e.log_level = "warn"  # dockerd's spelling, on the command line too
    e.start()
    try:
        assert os.stat(e.address).st_gid == gid
        ok(e, "pull", "busybox")
        assert ok(e, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn") == \
            "2048\n4096\n"
        # A container's own ulimit of that name wins; inspect shows the merged set, as dockerd's.
        assert ok(e, "run", "--rm", "--network", "none", "--ulimit", "nofile=100:200", "busybox", "sh", "-c",
                  "ulimit -n") == "100\n"
        ok(e, "create", "--name", "limited", "--ulimit", "nproc=50:60", "busybox")
        assert json.loads(ok(e, "inspect", "-f", "{{json .HostConfig.Ulimits}}", "limited")) == [
            {"Name": "nproc", "Soft": 50, "Hard": 60}, {"Name": "nofile", "Soft": 2048, "Hard": 4096}]
        ok(e, "rm", "limited")
        # dockerd's other container defaults: /dev/shm's size (in inspect too), no-new-privileges, an init.
        out = ok(e, "run", "--rm", "--network", "none", "busybox", "sh", "-c",
                 "df -k /dev/shm | tail -1; grep NoNewPrivs /proc/self/status; cat /proc/1/comm")
        assert out.split()[1] == str(128 * 1024) and "NoNewPrivs:\t1" in out, out
        assert out.split()[-1] != "sh"  # PID 1 is the init, not the command
        assert ok(e, "run", "--rm", "--network", "none", "--init=false", "busybox", "cat", "/proc/1/comm") == "cat\n"
        ok(e, "create", "--name", "shm", "busybox")
        assert json.loads(ok(e, "inspect", "-f", "{{json .HostConfig.ShmSize}}", "shm")) == 128 << 20
        ok(e, "rm", "shm")
    finally:
        e.cleanup()


def test_a_second_engine_on_the_same_data_root_is_refused(runtime_daemon: RuntimeDaemon) -> None:
    e = EngineDaemon(runtime_daemon)
    e.start()
    try:
        out = subprocess.run(e.command(), capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and f"is in use by another pyengined (pid {e.proc.pid})" in out.stderr, out
        ok(e, "version")  # the first keeps its socket
    finally:
        e.cleanup()
