"""What a process inside the container sees, and what `docker run` refuses, as dockerd 20.10 does: the cases a
differential audit of run flags found different (docs/compatibility.md, session 16)."""
from __future__ import annotations

import json
import os

from tests.integration import test_engine_containers as containers
from tests.integration.test_engine_containers import cli, curl, ok

engine, no_leftovers = containers.engine, containers.no_leftovers

_WRITE_ETC = "for f in hosts hostname resolv.conf; do echo x >> /etc/$f 2>/dev/null; echo $f=$?; done"


def test_a_read_only_root_makes_the_etc_files_read_only(engine) -> None:
    for network in ("none", "bridge"):
        out = ok(engine, "run", "--rm", "--network", network, "--read-only", "busybox", "sh", "-c", _WRITE_ETC)
        assert out.split() == ["hosts=1", "hostname=1", "resolv.conf=1"], (network, out)
    out = ok(engine, "run", "--rm", "--network", "none", "busybox", "sh", "-c", _WRITE_ETC)
    assert out.split() == ["hosts=0", "hostname=0", "resolv.conf=0"]


def test_the_hosts_shm_is_shared_as_it_is(engine) -> None:
    out = ok(engine, "run", "--rm", "--network", "none", "--ipc", "host", "busybox", "grep", " /dev/shm ",
             "/proc/self/mountinfo")
    options = out.split()[5].split(",")
    assert "rw" in options and not {"noexec", "nosuid", "nodev"} & set(options), out


def test_refusals_in_dockerds_words(engine) -> None:
    ok(engine, "run", "-d", "--name", "tgt", "--network", "none", "busybox", "sleep", "60")
    ncpu = os.cpu_count() or 1
    cases = [
        (["--uts", "host", "--hostname", "foo"], "conflicting options: hostname and the UTS mode"),
        (["--network", "none", "--network", "container:tgt"],
         "Container cannot be connected to network endpoints: container:tgt, none"),
        (["--oom-score-adj", "1001"], "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
        (["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
        (["--cpus", "0.5", "--cpu-period", "100000"], "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
        (["--cpuset-cpus", "abc"], "Invalid value abc for cpuset cpus: invalid format: abc"),
        (["--cpuset-cpus", str(ncpu)],
         f"Requested CPUs are not available - requested {ncpu}, available: {'0' if ncpu == 1 else f'0-{ncpu - 1}'}"),
        (["--cap-add", "FOO"], 'unknown capability: "CAP_FOO"'),
        (["--workdir", "relative"], "the working directory 'relative' is invalid, it needs to be an absolute path"),
    ]
    for flags, message in cases:
        out = cli(engine, "run", "--rm", *flags, "busybox", "true")
        assert out.returncode == 125 and message in out.stderr, (flags, out.stderr)
    ok(engine, "rm", "-f", "tgt")


def test_a_missing_device_is_a_missing_file_to_the_cli(engine) -> None:
    out = cli(engine, "run", "--rm", "--network", "none", "--device", "/dev/nosuch", "busybox", "true")
    # The docker CLI answers 127 when the daemon's error says a file is missing, in Go's words.
    assert out.returncode == 127, out.stderr
    assert 'error gathering device information while adding custom device "/dev/nosuch": no such file or directory' \
        in out.stderr


def test_a_kernel_memory_limit_is_warned_about(engine) -> None:
    # The field left the API in 1.42 (today's CLI drops --kernel-memory); older clients still send it.
    body = json.dumps({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"KernelMemory": 64 << 20}})
    status, _, out = curl(engine, "POST", "/v1.41/containers/create", body)
    assert status == 201, out
    assert json.loads(out)["Warnings"] == [
        "Specifying a kernel memory limit is deprecated and will be removed in a future release."]
    ok(engine, "rm", json.loads(out)["Id"])


def test_a_volume_that_cannot_be_mounted_fails_the_start(engine) -> None:
    ok(engine, "volume", "create", "--opt", "type=none", "--opt", "device=/nonexistent/pyengine-test",
       "--opt", "o=bind", "unmountable")
    out = cli(engine, "run", "--rm", "--network", "none", "-v", "unmountable:/x", "busybox", "true", timeout=30)
    assert out.returncode != 0 and "error while mounting volume" in out.stderr, out.stderr
    assert ok(engine, "ps", "-aq") == ""  # --rm removed it, as after any failed start
    out = cli(engine, "run", "--name", "kept", "--network", "none", "-v", "unmountable:/x", "busybox", "true",
              timeout=30)
    assert out.returncode != 0
    assert ok(engine, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "kept").split()[0] == "created"
    ok(engine, "rm", "kept")
    ok(engine, "volume", "rm", "unmountable")


def test_an_exec_environment_is_dockerds(engine) -> None:
    ok(engine, "run", "-d", "--name", "envs", "--network", "none", "--hostname", "h1", "-e", "X=1", "busybox",
       "sleep", "60")
    path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    out = ok(engine, "exec", "-t", "-e", "A=1", "envs", "env").replace("\r", "").split()
    assert out == [path, "HOSTNAME=h1", "TERM=xterm", "X=1", "A=1", "HOME=/root"]
    # HOME is the exec user's own, unless the container or the exec names one.
    assert ok(engine, "exec", "-u", "nobody", "envs", "env").split() == [path, "HOSTNAME=h1", "X=1", "HOME=/home"]
    assert ok(engine, "exec", "-u", "nobody", "-e", "HOME=/h", "envs", "sh", "-c", "echo $HOME") == "/h\n"
    ok(engine, "rm", "-f", "envs")


def test_joining_the_network_of_a_container_without_one(engine) -> None:
    """`--network container:X` where X runs with `--network none`: X's loopback-only namespace, as dockerd joins
    it (docker-compose's `network_mode: service:x` on such a service)."""
    ok(engine, "run", "-d", "--network", "none", "--name", "lonely", "busybox", "sleep", "60")
    theirs = ok(engine, "exec", "lonely", "stat", "-L", "-c", "%i", "/proc/self/ns/net")
    out = ok(engine, "run", "--rm", "--network", "container:lonely", "busybox", "sh", "-c",
             "ip -o link | cut -d: -f2; stat -L -c %i /proc/self/ns/net")
    assert out.split() == ["lo", theirs.strip()], (out, theirs)
    ok(engine, "create", "--name", "joiner", "--network", "container:lonely", "busybox", "true")
    ok(engine, "stop", "-t", "0", "lonely")
    out = cli(engine, "start", "joiner")
    assert out.returncode != 0 and "cannot join network of a non running container" in out.stderr, out.stderr
    ok(engine, "rm", "-f", "lonely", "joiner")
    pins = os.path.join(engine.base, "exec", "net-joins")
    assert not os.path.isdir(pins) or os.listdir(pins) == []
