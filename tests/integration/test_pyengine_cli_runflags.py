"""pyengine run/create's host, security, resource, logging and stream flags against a test pyengined: the
container each makes inspects as the docker CLI's does for the same flags, and they act inside it."""
from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.integration.test_pyengine_cli import PYENGINE, env_of, on_terminal, until


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def cli(engine: EngineDaemon, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYENGINE, *args], env={**env_of(engine), **(env or {})}, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def docker(engine: EngineDaemon, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env={**engine.env(), **(env or {})}, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def ok(engine: EngineDaemon, *args: str, env: dict[str, str] | None = None) -> str:
    out = cli(engine, *args, env=env)
    assert out.returncode == 0, f"pyengine {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def differences(ours: dict, theirs: dict) -> dict[str, tuple[object, object]]:
    return {k: (ours.get(k), theirs.get(k)) for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}


def inspected(engine: EngineDaemon, name: str) -> dict:
    out = docker(engine, "container", "inspect", name)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[0]


HOST_FLAGS = [
    "-h", "hn", "--domainname", "example.org", "--cap-add", "net_admin", "--cap-add", "SYS_TIME",
    "--cap-drop", "MKNOD", "--read-only", "--security-opt", "no-new-privileges",
    "--add-host", "db.local:10.1.2.3", "--add-host", "gw=host-gateway", "--dns", "192.0.2.53",
    "--dns-search", "example.org", "--dns-option", "ndots:2", "--ulimit", "nofile=1024:2048",
    "--ulimit", "nproc=500", "--shm-size", "96m", "--stop-signal", "SIGUSR1", "--stop-timeout", "7",
    "--pids-limit", "80", "-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "-c", "512",
    "--cpu-period", "100000", "--cpu-quota", "50000", "--cpuset-cpus", "0", "--cpuset-mems", "0",
    "--device", "/dev/null:/dev/mynull:rw", "--sysctl", "net.ipv4.ip_forward=1", "--ipc", "shareable",
    "--group-add", "10", "--group-add", "20", "--oom-score-adj", "100",
    "--log-driver", "json-file", "--log-opt", "max-size=10m", "-e", "X=1", "-l", "q=2",
]


def _files(tmp_path: Path) -> list[str]:
    env_file, label_file = tmp_path / "env", tmp_path / "labels"
    env_file.write_text("FOO=bar\n# a comment\n\nFROM_HOST\nQ=\"x y\"\nX=from-file\n")
    label_file.write_text("team=infra\n  spaced=a b \nbare\n")
    return ["--env-file", str(env_file), "--label-file", str(label_file)]


def test_host_flags_inspect_as_docker_sets_them(engine, tmp_path):
    flags = [*HOST_FLAGS, *_files(tmp_path)]
    host_env = {"FROM_HOST": "h"}
    ok(engine, "create", "--name", "ours", "--cidfile", str(tmp_path / "p.cid"), *flags, "busybox", "true",
       env=host_env)
    made = docker(engine, "create", "--name", "theirs", "--cidfile", str(tmp_path / "d.cid"), *flags, "busybox",
                  "true", env=host_env)
    assert made.returncode == 0, made.stderr
    ours, theirs = inspected(engine, "ours"), inspected(engine, "theirs")
    assert (tmp_path / "p.cid").read_text() == ours["Id"]
    assert ours["HostConfig"].pop("ContainerIDFile") == str(tmp_path / "p.cid")
    assert theirs["HostConfig"].pop("ContainerIDFile") == str(tmp_path / "d.cid")
    assert differences(ours["HostConfig"], theirs["HostConfig"]) == {}
    assert differences(ours["Config"], theirs["Config"]) == {}
    config = ours["Config"]
    assert config["Env"][:5] == ["FOO=bar", "FROM_HOST=h", "Q=\"x y\"", "X=from-file", "X=1"]
    assert config["Labels"] == {"team": "infra", "spaced": "a b ", "q": "2"}
    assert (config["Hostname"], config["Domainname"], config["StopSignal"], config["StopTimeout"]) == (
        "hn", "example.org", "SIGUSR1", 7)
    again = cli(engine, "create", "--cidfile", str(tmp_path / "p.cid"), "busybox")
    assert again.returncode == 125 and "container ID file found" in again.stderr


def test_privileged_and_namespace_flags_inspect_as_docker_sets_them(engine):
    flags = ["--privileged", "--pid", "host", "--uts", "host", "--oom-kill-disable", "--security-opt",
             "systempaths=unconfined", "--cap-drop", "all", "--cap-add", "chown"]
    ok(engine, "create", "--name", "ours", *flags, "busybox")
    assert docker(engine, "create", "--name", "theirs", *flags, "busybox").returncode == 0
    ours, theirs = inspected(engine, "ours"), inspected(engine, "theirs")
    assert differences(ours["HostConfig"], theirs["HostConfig"]) == {}
    assert ours["HostConfig"]["CapDrop"] == ["ALL"] and ours["HostConfig"]["PidMode"] == "host"


def test_host_flags_act_inside_the_container(engine, tmp_path):
    (tmp_path / "env").write_text("FOO=bar\n")
    script = ("hostname; cat /proc/sys/kernel/domainname; grep -o hn.example.org /etc/hosts; grep db.local /etc/hosts; grep -v '^#' /etc/resolv.conf; "
              "ulimit -n; df -k /dev/shm | tail -1; touch /x 2>/dev/null || echo read-only; "
              "cat /proc/sys/net/ipv4/ip_forward; id -G; echo $FOO; ls /dev/mynull; "
              "grep CapEff /proc/self/status")
    out = ok(engine, "run", "--rm", "-h", "hn", "--domainname", "example.org", "--add-host", "db.local:10.1.2.3",
             "--dns", "192.0.2.53", "--dns-search", "example.org", "--dns-option", "ndots:2", "--ulimit",
             "nofile=1024:2048", "--shm-size", "96m", "--read-only", "--sysctl", "net.ipv4.ip_forward=1",
             "--group-add", "10", "--env-file", str(tmp_path / "env"), "--device", "/dev/null:/dev/mynull",
             "--cap-drop", "all", "--cap-add", "chown", "busybox", "sh", "-c", script).splitlines()
    assert out[:4] == ["hn", "example.org", "hn.example.org", "10.1.2.3\tdb.local"]
    assert sorted(out[4:7]) == ["nameserver 192.0.2.53", "options ndots:2", "search example.org"]
    assert out[7] == "1024"
    assert out[8].split()[1] == str(96 * 1024)
    assert out[9:] == ["read-only", "1", "0 10", "bar", "/dev/mynull", "CapEff:\t0000000000000001"]


def test_attach_selects_streams(engine):
    script = "echo out; echo err >&2; exit 3"
    for streams in (["-a", "stdout"], ["-a", "STDERR"], ["-a", "stdout", "-a", "stderr"]):
        ours = cli(engine, "run", "--rm", *streams, "busybox", "sh", "-c", script)
        theirs = docker(engine, "run", "--rm", *streams, "busybox", "sh", "-c", script)
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
        assert ours.returncode == 3
    only_stdin = cli(engine, "run", "--name", "si", "-a", "stdin", "busybox", "true")
    assert (only_stdin.returncode, only_stdin.stdout) == (0, inspected(engine, "si")["Id"] + "\n")
    bad = cli(engine, "run", "-a", "stdnope", "busybox")
    assert (bad.returncode, bad.stderr) == (
        125, 'invalid argument "stdnope" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR\n')
    both = cli(engine, "run", "-d", "-a", "stdout", "busybox")
    assert (both.returncode, both.stderr) == (1, "conflicting options: cannot specify both --attach and --detach\n")


def test_pull_policies_and_platform(engine):
    absent = cli(engine, "run", "--rm", "--pull", "never", "busybox:1.0-absent")
    theirs = docker(engine, "run", "--rm", "--pull", "never", "busybox:1.0-absent")
    assert absent.returncode == theirs.returncode == 125
    assert absent.stderr == "Error response from daemon: No such image: busybox:1.0-absent\n"
    assert absent.stderr.strip() in theirs.stderr
    pulled = cli(engine, "run", "--rm", "--pull", "always", "busybox", "echo", "ran")
    theirs = docker(engine, "run", "--rm", "--pull", "always", "busybox", "echo", "ran")
    assert (pulled.returncode, pulled.stdout, pulled.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert pulled.stderr.startswith("latest: Pulling from library/busybox\n")
    missing = []
    for tool in (cli, docker):
        assert docker(engine, "rmi", "busybox").returncode == 0
        quiet = tool(engine, "run", "--rm", "-q", "busybox", "echo", "ran")
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "ran\n", "")
        assert docker(engine, "rmi", "busybox").returncode == 0
        missing.append(tool(engine, "run", "--rm", "busybox", "echo", "ran"))
    # Per-layer progress lines come as often as the transfer reports; the rest is the same text.
    said = [[line for line in m.stderr.splitlines() if not re.match(r"[0-9a-f]{12}: ", line)] for m in missing]
    assert [(m.returncode, m.stdout) for m in missing] == [(0, "ran\n")] * 2
    assert said[0] == said[1] and said[0][:2] == ["Unable to find image 'busybox:latest' locally",
                                                  "latest: Pulling from library/busybox"]
    other = cli(engine, "create", "--pull", "never", "--platform", "linux/s390x", "busybox")
    theirs = docker(engine, "create", "--pull", "never", "--platform", "linux/s390x", "busybox")
    assert other.returncode == 1 and other.stderr.strip() in theirs.stderr
    assert "does not match the specified platform" in other.stderr
    bad = cli(engine, "create", "--pull", "sometimes", "busybox")
    assert (bad.returncode, bad.stderr) == (
        125, "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\"\n")


def _running_in_foreground(engine: EngineDaemon, name: str, *flags: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([PYENGINE, "run", "--name", name, *flags, "busybox", "sh", "-c",
                          "trap 'echo got-term; exit 7' TERM; echo ready; sleep 60 & wait"],
                         env=env_of(engine), stdout=subprocess.PIPE, text=True)
    until(lambda: "ready" in cli(engine, "logs", name).stdout, timeout=30)
    return p


def test_sig_proxy(engine):
    bad = cli(engine, "run", "--sig-proxy=maybe", "busybox")
    assert bad.returncode == 125 and '"--sig-proxy"' in bad.stderr
    p = _running_in_foreground(engine, "proxied")
    try:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 7
        assert p.stdout is not None and p.stdout.read() == "ready\ngot-term\n"
    finally:
        p.kill()
        p.wait()
    kept = _running_in_foreground(engine, "kept", "--sig-proxy=false")
    try:
        kept.send_signal(signal.SIGTERM)
        assert kept.wait(timeout=30) == -signal.SIGTERM
    finally:
        kept.kill()
        kept.wait()
    assert inspected(engine, "kept")["State"]["Running"] is True
    ok(engine, "run", "-d", "--name", "stopped", "--stop-signal", "USR1", "--stop-timeout", "60", "busybox", "sh", "-c",
       "trap 'exit 9' USR1; echo ready; sleep 60 & wait")
    until(lambda: "ready" in cli(engine, "logs", "stopped").stdout, timeout=30)
    ok(engine, "stop", "stopped")
    assert inspected(engine, "stopped")["State"]["ExitCode"] == 9


def test_run_detaches_with_custom_keys(engine):
    bad = cli(engine, "run", "--detach-keys", "ctrl-zz", "busybox")
    assert (bad.returncode, bad.stderr) == (125, "Invalid detach keys (ctrl-zz) provided\n")
    p = on_terminal(engine, "run", "-it", "--name", "dk", "--detach-keys", "ctrl-a,x", "busybox", "sh")
    p.read_until(b"# ")
    p.write(b"echo hi-$((2+3))\r")
    p.read_until(b"hi-5")
    p.write(b"\x01x")
    assert p.wait() == 0
    assert inspected(engine, "dk")["State"]["Running"] is True


def _block_device() -> str | None:
    for name in ("vda", "sda", "nvme0n1", "xvda", "loop0"):
        if Path(f"/dev/{name}").is_block_device():
            return f"/dev/{name}"
    return None


def test_resource_and_namespace_flags_inspect_as_docker_sets_them(engine):
    flags = ["--annotation", "org.example.a=b", "--cgroupns", "private", "--cgroup-parent", "pyengine-test.slice",
             "--memory-swappiness", "0", "--runtime", "runc", "--mac-address", "92:d0:c6:0a:29:33",
             "--blkio-weight", "300", "--device-cgroup-rule", "c 1:3 rmw", "--kernel-memory", "64m"]
    device = _block_device()
    if device:
        flags += ["--blkio-weight-device", f"{device}:200", "--device-read-bps", f"{device}:1mb",
                  "--device-write-iops", f"{device}:50"]
    ours = cli(engine, "create", "--name", "ours", *flags, "busybox")
    theirs = docker(engine, "create", "--name", "theirs", *flags, "busybox")
    assert (ours.returncode, theirs.returncode) == (0, 0), (ours.stderr, theirs.stderr)
    a, b = inspected(engine, "ours"), inspected(engine, "theirs")
    assert differences(a["HostConfig"], b["HostConfig"]) == {}
    assert a["HostConfig"]["Annotations"] == {"org.example.a": "b"}
    assert a["NetworkSettings"]["Networks"] == b["NetworkSettings"]["Networks"]


def test_volumes_from_and_links(engine):
    ok(engine, "run", "-d", "--name", "data", "-v", "/shared", "busybox", "sh", "-c",
       "echo hi > /shared/f; sleep 60")
    flags = ["--volumes-from", "data:ro", "--link", "data:db"]
    for tool, name in ((cli, "ours"), (docker, "theirs")):
        assert tool(engine, "create", "--name", name, *flags, "busybox", "sh", "-c",
                    "cat /shared/f; touch /shared/g 2>/dev/null || echo ro; grep -c db /etc/hosts").returncode == 0
    a, b = inspected(engine, "ours"), inspected(engine, "theirs")
    assert a["HostConfig"]["VolumesFrom"] == ["data:ro"]
    assert a["HostConfig"]["Links"] == ["/data:/ours/db"]
    assert differences({k: v for k, v in a["HostConfig"].items() if k != "Links"},
                       {k: v for k, v in b["HostConfig"].items() if k != "Links"}) == {}
    assert ok(engine, "start", "-a", "ours").splitlines()[:2] == ["hi", "ro"]


def test_user_network_long_syntax(engine):
    ok(engine, "network", "create", "front")
    try:
        for tool, name in ((cli, "ours"), (docker, "theirs")):
            made = tool(engine, "create", "--name", name, "--network", f"name=front,alias={name}-a", "busybox")
            assert made.returncode == 0, made.stderr
        a, b = inspected(engine, "ours"), inspected(engine, "theirs")
        assert a["HostConfig"]["NetworkMode"] == "front"
        ours_ep, theirs_ep = a["NetworkSettings"]["Networks"]["front"], b["NetworkSettings"]["Networks"]["front"]
        assert ours_ep["Aliases"] == ["ours-a"] and theirs_ep["Aliases"] == ["theirs-a"]
    finally:
        engine.reset()
        docker(engine, "network", "rm", "front")


REFUSED_BY_THE_ENGINE = [["--gpus", "all"], ["--storage-opt", "size=1G"], ["--link-local-ip", "169.254.1.1"],
                         ["--cpu-rt-period", "1000"]]


@pytest.mark.parametrize("flags", REFUSED_BY_THE_ENGINE, ids=[f[0] for f in REFUSED_BY_THE_ENGINE])
def test_the_engines_refusal_reaches_the_user_as_with_docker(engine, flags):
    for command in ("create", "run"):
        ours = cli(engine, command, *flags, "busybox", "true")
        theirs = docker(engine, command, *flags, "busybox", "true")
        assert ours.returncode == theirs.returncode == (1 if command == "create" else 125)
        said = ours.stderr.strip()
        assert said.startswith("Error response from daemon: ") and "is not supported" in said
        assert said in theirs.stderr


def test_use_api_socket_mounts_the_daemons_socket(engine):
    out = ok(engine, "run", "--name", "api", "--use-api-socket", "busybox", "sh", "-c",
             "test -S /var/run/docker.sock && echo socket")
    assert out == "socket\n"
    mounts = inspected(engine, "api")["HostConfig"]["Mounts"]
    assert [(m["Type"], m["Source"], m["Target"]) for m in mounts] == [
        ("bind", engine.host.removeprefix("unix://"), "/var/run/docker.sock")]
