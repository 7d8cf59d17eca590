"""The `pyengine` CLI (cli/pyengine), run as its installed console script against a test pyengined and, where
Debian's docker.io is installed, against the real dockerd 20.10 (private root and socket, no networking)."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine
from tests.fixtures.dockerd import MirroredDockerd, missing, mirrored_dockerd
from tests.integration.helpers import BIN, PtyProcess

PYENGINE = str(BIN / "pyengine")


# The module runs against pyengined and, where it is installed, against the real dockerd (issue 15): the CLI
# must work against either.
DAEMONS = ["pyengined", pytest.param("dockerd", marks=pytest.mark.skipif(missing() is not None,
                                                                        reason=f"no reference daemon: {missing()}"))]


@contextlib.contextmanager
def daemon_under_test(kind: str, base: str, registry_host: str) -> Iterator[EngineDaemon | MirroredDockerd]:
    """pyengined or dockerd, Docker Hub mirrored by the fixture registry, busybox already pulled."""
    if kind == "dockerd":
        with mirrored_dockerd(registry_host) as d:
            yield d
    else:
        with mirrored_engine(base, registry_host) as e:
            yield e


@pytest.fixture(scope="module", params=DAEMONS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           registry) -> Iterator[EngineDaemon | MirroredDockerd]:
    with daemon_under_test(request.param, str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


@pytest.fixture(scope="module")
def pyengined_only(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    """For the CLI modules that test pyengined's own networking and supervision: pyengined alone."""
    with daemon_under_test("pyengined", str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        assert isinstance(e, EngineDaemon)
        yield e


def is_dockerd(engine: EngineDaemon | MirroredDockerd) -> bool:
    return isinstance(engine, MirroredDockerd)


def env_of(engine: EngineDaemon) -> dict[str, str]:
    return dict(engine.env(), PYENGINE_HOST=engine.host)


def cli(engine: EngineDaemon, *args: str, input: str | None = None, timeout: float = 60,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYENGINE, *args], env=env or env_of(engine), capture_output=True, text=True,
                          input=input, timeout=timeout, check=False)


def ok(engine: EngineDaemon, *args: str, input: str | None = None) -> str:
    out = cli(engine, *args, input=input)
    assert out.returncode == 0, f"pyengine {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def on_terminal(engine: EngineDaemon, *args: str) -> PtyProcess:
    """pyengine on a 30x100 terminal."""
    p = PtyProcess([PYENGINE, *args], env_of(engine))
    fcntl.ioctl(p.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    return p


def state(engine: EngineDaemon, name: str) -> dict:
    return json.loads(ok(engine, "inspect", "--type", "container", name))[0]["State"]


def state_id(engine: EngineDaemon, name: str) -> str:
    return json.loads(ok(engine, "inspect", name))[0]["Id"]


def until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def endpoint_missing(out: subprocess.CompletedProcess[str]) -> bool:
    """The daemon does not serve that route (yet): its 404 for unknown routes."""
    return out.returncode != 0 and "page not found" in out.stderr


# system ----------------------------------------------------------------------


def test_version_and_info(engine):
    out = ok(engine, "version")
    assert out.startswith("Client:\n") and "\nServer: " in out
    # The API version is negotiated: the daemon's, at most the CLI's own (1.50); dockerd 20.10 speaks 1.41.
    if is_dockerd(engine):
        assert "API version:    1.41 (downgraded from 1.50)" in out
        assert ok(engine, "version", "--format", "{{.Server.ApiVersion}} {{.Client.ApiVersion}}") == "1.41 1.41\n"
    else:
        assert "\nServer: pyengine\n" in out and "1.50 (minimum version 1.12)" in out
        assert ok(engine, "version", "--format", "{{.Server.ApiVersion}} {{.Client.ApiVersion}}") == "1.50 1.50\n"
    info = ok(engine, "info")
    assert " Containers:" in info and " Server Version:" in info and "  http://" in info
    assert ok(engine, "info", "--format", "{{.OSType}}/{{json .Swarm.LocalNodeState}}") == 'linux/"inactive"\n'


def test_host_flag_and_environment(engine):
    bogus = dict(env_of(engine), PYENGINE_HOST="unix:///nonexistent.sock")
    out = cli(engine, "ps", env=bogus)
    assert out.returncode == 1
    assert out.stderr == ("Cannot connect to the Docker daemon at unix:///nonexistent.sock. "
                          "Is the docker daemon running?\n")
    assert cli(engine, "-H", engine.host, "ps", env=bogus).returncode == 0
    assert cli(engine, "-H", "unix:///nonexistent.sock", "run", "--rm", "busybox", "true").returncode == 125


def test_system_df(engine):
    ok(engine, "run", "-d", "--name", "dfc", "busybox", "sleep", "60")
    lines = ok(engine, "system", "df").splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = {line[:16].strip(): line[16:].split() for line in lines[1:]}
    assert set(rows) == {"Images", "Containers", "Local Volumes", "Build Cache"}
    assert rows["Containers"][:2] == ["1", "1"]
    assert int(rows["Images"][1]) >= 1


def test_events_since_until_filter_format(engine):
    start = time.time()
    ok(engine, "run", "--rm", "--name", "evt", "busybox", "true")
    time.sleep(0.5)
    out = cli(engine, "events", "--since", f"{start:.3f}", "--until", f"{time.time():.3f}",
              "--filter", "container=evt", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
              timeout=30)
    if endpoint_missing(out):
        pytest.skip("GET /events is not served by this engine yet")
    assert out.returncode == 0, out.stderr
    actions = [line.split()[1] for line in out.stdout.splitlines()]
    assert {"create", "start", "die", "destroy"} <= set(actions), out.stdout
    assert all(line.split()[0] == "container" and line.endswith(" evt") for line in out.stdout.splitlines())
    plain = ok(engine, "events", "--since", f"{start:.3f}", "--until", f"{time.time():.3f}",
               "--filter", "event=die", "--filter", "container=evt").splitlines()
    assert len(plain) == 1 and " container die " in plain[0] and "exitCode=0" in plain[0], plain
    # A relative --since reaches back too.
    assert " container create " in ok(engine, "events", "--since", "1m", "--until", "0s", "-f", "container=evt")


# images ----------------------------------------------------------------------


def test_pull_images_rmi(engine, registry):
    ref = f"{registry.host}/library/busybox:zstd"
    out = ok(engine, "pull", ref)
    lines = out.splitlines()
    assert lines[0] == "zstd: Pulling from library/busybox"
    if not is_dockerd(engine):  # dockerd 20.10 prints no line for a zstd layer it already has
        assert any(line.endswith(": Pull complete") or line.endswith(": Already exists") for line in lines), out
    assert lines[-2].startswith("Status: ") and lines[-1] == ref
    # Each status once per layer in plain output, not every progress message.
    assert len(lines) == len(set(lines))
    assert ok(engine, "pull", "-q", ref) == ref + "\n"
    default_tag = ok(engine, "pull", "busybox").splitlines()
    assert default_tag[0] == "Using default tag: latest" and default_tag[-1] == "docker.io/library/busybox:latest"

    listing = ok(engine, "images").splitlines()
    assert listing[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == [f"{registry.host}/library/busybox", "zstd"] for line in listing)
    image_id = json.loads(ok(engine, "inspect", ref))[0]["Id"]
    assert image_id.removeprefix("sha256:")[:12] in ok(engine, "images", "-q").split()
    assert ok(engine, "images", "--format", "{{.Repository}}:{{.Tag}}", f"{registry.host}/library/busybox") == \
        f"{registry.host}/library/busybox:zstd\n"

    assert ok(engine, "rmi", ref).splitlines()[0] == f"Untagged: {ref}"
    out = cli(engine, "rmi", ref)
    assert out.returncode == 1 and out.stderr.startswith("Error response from daemon: ")

    bad = cli(engine, "pull", f"{registry.host}/library/nosuch:v1")
    assert bad.returncode == 1 and "Error response from daemon: " in bad.stderr and "not found" in bad.stderr


def test_pull_on_a_terminal_draws_progress(engine, registry):
    ref = f"{registry.host}/library/busybox:docker"
    p = on_terminal(engine, "pull", ref)
    p.read_until(ref.encode() + b"\r\n", timeout=60)
    assert p.wait() == 0
    assert b"Pulling from library/busybox" in p.out and b"\x1b[" in p.out  # rich redraws its bars in place
    ok(engine, "rmi", ref)


# run -------------------------------------------------------------------------


def test_run_rm_output_streams_and_exit_code(engine):
    out = cli(engine, "run", "--rm", "busybox", "echo", "hi")
    assert (out.returncode, out.stdout, out.stderr) == (0, "hi\n", "")
    out = cli(engine, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (out.returncode, out.stdout, out.stderr) == (3, "out\n", "err\n")
    assert ok(engine, "ps", "-aq") == ""


def test_run_start_failures_exit_like_docker(engine):
    out = cli(engine, "run", "--rm", "busybox", "nosuchcmd")
    assert out.returncode == 127
    assert out.stderr.startswith("Error response from daemon: ") and "executable file not found" in out.stderr
    assert ok(engine, "ps", "-aq") == ""
    out = cli(engine, "run", "--name", "bad", "busybox", "/etc")
    assert out.returncode == 126, out.stderr
    assert state(engine, "bad")["Status"] == "created"


def test_run_cli_failures_exit_125(engine, registry):
    out = cli(engine, "run", "--bogus", "busybox", "true")
    assert out.returncode == 125 and "--bogus" in out.stderr
    out = cli(engine, "run", "--memory", "lots", "busybox", "true")
    assert out.returncode == 125 and "invalid size" in out.stderr
    out = cli(engine, "run", "--rm", f"{registry.host}/library/nosuch:v1", "true")
    assert out.returncode == 125
    assert f"Unable to find image '{registry.host}/library/nosuch:v1' locally" in out.stderr
    ok(engine, "run", "-d", "--name", "taken", "busybox", "sleep", "60")
    out = cli(engine, "run", "--name", "taken", "busybox", "true")
    assert out.returncode == 125 and "Error response from daemon: Conflict." in out.stderr


def test_run_pulls_a_missing_image(engine, registry):
    ref = f"{registry.host}/library/busybox:latest"
    out = cli(engine, "run", "--rm", ref, "echo", "pulled")
    assert (out.returncode, out.stdout) == (0, "pulled\n"), out.stderr
    assert f"Unable to find image '{ref}' locally" in out.stderr and "Status: " in out.stderr
    ok(engine, "rmi", ref)


def test_run_stdin_options_and_mounts(engine, tmp_path):
    out = ok(engine, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done", input="piped\ndata\n")
    assert out == "piped\ndata\ndone\n"
    (tmp_path / "in.txt").write_text("from host\n")
    tmp_path.chmod(0o777)
    out = ok(engine, "run", "--rm", "-v", f"{tmp_path}:/data:ro", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000",
             "busybox", "sh", "-c", "cat /data/in.txt; echo $FOO; pwd; id -u; touch /data/x 2>&1 | grep -c Read-only")
    assert out.splitlines() == ["from host", "bar", "/tmp", "1000", "1"]
    ok(engine, "run", "--rm", "-v", f"{tmp_path}:/data", "busybox", "sh", "-c", "echo back > /data/out.txt")
    assert (tmp_path / "out.txt").read_text() == "back\n"
    assert ok(engine, "run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint") == "via entrypoint\n"
    assert ok(engine, "run", "--rm", "--network", "host", "busybox", "hostname") == os.uname().nodename + "\n"
    assert ok(engine, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net") == "lo\n"
    assert ok(engine, "run", "--rm", "--init", "busybox", "sh", "-c", "ps -o comm | sed -n 2p").strip() in (
        "pyengine-init", "tini-static", "docker-init")
    cid = ok(engine, "run", "-d", "-l", "a=1", "-l", "b", "--memory", "64m", "--cpus", "1.5", "busybox",
             "sleep", "60").strip()
    doc = json.loads(ok(engine, "inspect", cid))[0]
    assert doc["Config"]["Labels"] == {"a": "1", "b": ""}
    assert (doc["HostConfig"]["Memory"], doc["HostConfig"]["NanoCpus"]) == (64 << 20, 1_500_000_000)


def test_attached_run_passes_signals_on(engine):
    script = "trap 'echo got-int; exit 9' INT; echo ready; while true; do sleep 0.1; done"
    p = subprocess.Popen([PYENGINE, "run", "--rm", "busybox", "sh", "-c", script], env=env_of(engine),
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    assert (p.returncode, out) == (9, "got-int\n")


def test_run_it_terminal_resize_and_exit_code(engine):
    p = on_terminal(engine, "run", "-it", "--rm", "busybox", "sh")
    p.read_until(b"# ")
    p.write(b"stty size; echo hi-$((1+2))\r")
    p.read_until(b"hi-3")
    assert b"30 100" in p.out
    fcntl.ioctl(p.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.kill(p.pid, signal.SIGWINCH)  # the kernel sends it only to the terminal's foreground group
    time.sleep(0.5)
    p.write(b"stty size\r")
    p.read_until(b"40 120")
    p.write(b"exit 5\r")
    assert p.wait() == 5
    assert ok(engine, "ps", "-aq") == ""


def test_detach_keys_leave_the_container_running(engine):
    p = on_terminal(engine, "run", "-it", "--name", "det", "busybox", "sh")
    p.read_until(b"# ")
    p.write(b"\x10\x11")
    assert p.wait() == 0
    assert state(engine, "det")["Running"] is True


# detached containers ---------------------------------------------------------


def test_ps_filters_and_formats(engine):
    cid = ok(engine, "run", "-d", "--name", "web", "-l", "app=cli", "busybox", "sleep", "60").strip()
    ok(engine, "run", "--name", "done", "busybox", "true")
    assert len(cid) == 64
    assert ok(engine, "ps", "-q") == cid[:12] + "\n"
    assert set(ok(engine, "ps", "-aq").split()) == {cid[:12], state_id(engine, "done")[:12]}
    assert ok(engine, "ps", "-q", "--no-trunc") == cid + "\n"
    table = ok(engine, "ps").splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert table[1].startswith(cid[:12] + "   busybox   ") and table[1].endswith("web")
    assert ok(engine, "ps", "--filter", "name=web", "--format", "{{.Names}}|{{.Image}}|{{.Command}}") == \
        'web|busybox|"sleep 60"\n'
    assert ok(engine, "ps", "-a", "--filter", "label=app=cli", "-q") == cid[:12] + "\n"
    assert ok(engine, "ps", "-a", "-f", "status=exited", "-f", "name=done", "--format", "{{.Names}} {{.State}}") \
        == "done exited\n"
    assert ok(engine, "ps", "--filter", "status=exited", "-q").split() == [state_id(engine, "done")[:12]]
    row = json.loads(ok(engine, "ps", "--format", "{{json .}}"))
    assert (row["ID"], row["Names"], row["Labels"], row["State"]) == (cid[:12], "web", "app=cli", "running")
    assert row["Status"].startswith("Up ")
    assert ok(engine, "ps", "--format", "table {{.Names}}\\t{{.Status}}").splitlines()[0] == "NAMES     STATUS"
    out = cli(engine, "ps", "--filter", "bogus")
    assert out.returncode == 125 and "bad format of filter" in out.stderr


def test_logs_tail_timestamps_follow(engine):
    ok(engine, "run", "-d", "--name", "talk", "busybox", "sh", "-c",
       "echo err-1 >&2; sleep 0.3; for i in 1 2 3; do echo out-$i; done; "
       "until [ -e /tmp/go ]; do sleep 0.1; done; echo last")
    until(lambda: "out-3" in cli(engine, "logs", "talk").stdout)
    out = cli(engine, "logs", "talk")
    assert (out.stdout, out.stderr) == ("out-1\nout-2\nout-3\n", "err-1\n")
    assert cli(engine, "logs", "--tail", "1", "talk").stdout == "out-3\n"
    stamped = ok(engine, "logs", "-t", "-n", "1", "talk")
    assert stamped.endswith(" out-3\n") and stamped[:4].isdigit() and stamped.index("Z ") > 19
    follower = subprocess.Popen([PYENGINE, "logs", "-f", "talk"], env=env_of(engine), stdout=subprocess.PIPE,
                                text=True)
    time.sleep(1)
    ok(engine, "exec", "talk", "touch", "/tmp/go")
    followed, _ = follower.communicate(timeout=30)  # ends when the container does
    assert follower.returncode == 0 and followed == "out-1\nout-2\nout-3\nlast\n"
    # A TTY's output is one raw stream (its \r\n is read back as \n in text mode here).
    tty = cli(engine, "run", "-t", "--name", "ttylog", "busybox", "sh", "-c", "echo on-a-tty >&2")
    assert (tty.stdout, tty.stderr) == ("on-a-tty\n", "")
    assert ok(engine, "logs", "ttylog") == "on-a-tty\n"


def test_exec(engine):
    ok(engine, "run", "-d", "--name", "box", "busybox", "sleep", "60")
    out = cli(engine, "exec", "box", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (out.returncode, out.stdout, out.stderr) == (7, "out\n", "err\n")
    assert ok(engine, "exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000", "box", "sh", "-c",
              "echo $FOO $(pwd) $(id -u)") == "bar /tmp 1000\n"
    assert ok(engine, "exec", "-i", "box", "cat", input="through stdin\n") == "through stdin\n"
    assert ok(engine, "exec", "-d", "box", "sh", "-c", "echo detached > /tmp/d") == ""
    until(lambda: cli(engine, "exec", "box", "cat", "/tmp/d").stdout == "detached\n")
    missing = cli(engine, "exec", "box", "nosuchcmd")
    assert missing.returncode in (126, 127) and "nosuchcmd" in missing.stderr + missing.stdout
    ok(engine, "kill", "box")
    out = cli(engine, "exec", "box", "true")
    assert out.returncode == 1 and "is not running" in out.stderr


def test_exec_it_under_a_terminal(engine):
    ok(engine, "run", "-d", "--name", "shell", "busybox", "sleep", "60")
    p = on_terminal(engine, "exec", "-it", "shell", "sh")
    p.read_until(b"# ")
    p.write(b"stty size; tty\r")
    p.read_until(b"/dev/pts/")
    assert b"30 100" in p.out
    p.write(b"exit 4\r")
    assert p.wait() == 4


def test_stop_start_restart_kill_rm(engine):
    # Under an init: sleep as pid 1 would never see the SIGTERM.
    ok(engine, "run", "-d", "--init", "--name", "life", "busybox", "sleep", "600")
    assert ok(engine, "stop", "-t", "1", "life") == "life\n"
    assert state(engine, "life")["Status"] == "exited"
    assert ok(engine, "stop", "life") == "life\n"  # already stopped: 304, not an error
    assert ok(engine, "start", "life") == "life\n" and state(engine, "life")["Running"] is True
    pid = state(engine, "life")["Pid"]
    assert ok(engine, "restart", "-t", "1", "life") == "life\n"
    assert state(engine, "life")["Running"] is True and state(engine, "life")["Pid"] != pid
    assert ok(engine, "kill", "-s", "TERM", "life") == "life\n"
    until(lambda: state(engine, "life")["Status"] == "exited")
    assert state(engine, "life")["ExitCode"] == 143
    out = cli(engine, "kill", "life")
    assert out.returncode == 1 and "is not running" in out.stderr
    ok(engine, "start", "life")
    out = cli(engine, "rm", "life")
    assert out.returncode == 1 and "You cannot remove a running container" in out.stderr
    out = cli(engine, "rm", "-f", "-v", "life", "nosuch")
    assert out.returncode == 0 and out.stdout == "life\n"
    assert out.stderr == "Error response from daemon: No such container: nosuch\n"
    out = cli(engine, "stop", "nosuch", "also-missing")
    assert out.returncode == 1 and out.stderr.count("No such container") == 2


def test_start_attach_returns_the_exit_code(engine):
    assert cli(engine, "run", "--name", "again", "busybox", "sh", "-c", "echo ran; exit 6").returncode == 6
    out = cli(engine, "start", "-a", "again")
    assert (out.returncode, out.stdout) == (6, "ran\n")
    out = cli(engine, "start", "-a", "again", "other")
    assert out.returncode == 1 and "cannot start and attach multiple containers" in out.stderr
    ok(engine, "run", "-i", "--name", "reader", "busybox", "cat", input="")
    assert ok(engine, "start", "-ai", "reader", input="second run\n") == "second run\n"


def test_inspect_top(engine):
    cid = ok(engine, "run", "-d", "--name", "insp", "busybox", "sleep", "60").strip()
    docs = json.loads(ok(engine, "inspect", "insp", "busybox"))
    assert [d["Id"] for d in docs][0] == cid and docs[1]["Id"].startswith("sha256:")
    assert ok(engine, "inspect", "-f", "{{.Name}} {{.State.Running}} {{json .Config.Cmd}}", "insp") == \
        '/insp true ["sleep","60"]\n'
    # As docker's typed map of labels: a missing one is empty.
    assert ok(engine, "inspect", "--format", "{{index .Config.Labels \"none\"}}", "insp") == "\n"
    out = cli(engine, "inspect", "nosuch")
    assert (out.returncode, out.stdout, out.stderr) == (1, "[]\n", "Error: No such object: nosuch\n")
    out = cli(engine, "inspect", "--type", "image", "insp")
    assert out.returncode == 1 and "No such image" in out.stderr
    top = ok(engine, "top", "insp").splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and top[1].endswith("sleep 60")
    assert ok(engine, "top", "insp", "-o", "pid,comm").splitlines()[1].split()[1] == "sleep"


# cp --------------------------------------------------------------------------


def test_cp_both_directions(engine, tmp_path):
    ok(engine, "run", "-d", "--name", "files", "busybox", "sh", "-c",
       "mkdir -p /srv/d/sub && echo one > /srv/d/a && echo two > /srv/d/sub/b && sleep 60")
    until(lambda: cli(engine, "exec", "files", "cat", "/srv/d/sub/b").stdout == "two\n")
    out = cli(engine, "cp", "files:/srv/d/a", str(tmp_path / "a.txt"))
    if endpoint_missing(out):
        pytest.skip("/containers/{id}/archive is not served by this engine yet")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "a.txt").read_text() == "one\n"
    ok(engine, "cp", "files:/srv/d", str(tmp_path))  # into an existing directory, under its own name
    assert (tmp_path / "d" / "sub" / "b").read_text() == "two\n"
    ok(engine, "cp", "files:/srv/d", str(tmp_path / "copy"))  # a new name
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["a", "sub"]

    src = tmp_path / "up"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "f.txt").write_text("uploaded\n")
    (src / "top.txt").write_text("top\n")
    ok(engine, "cp", str(src), "files:/tmp")
    assert ok(engine, "exec", "files", "cat", "/tmp/up/inner/f.txt", "/tmp/up/top.txt") == "uploaded\ntop\n"
    ok(engine, "cp", str(src / "top.txt"), "files:/tmp/renamed.txt")
    assert ok(engine, "exec", "files", "cat", "/tmp/renamed.txt") == "top\n"
    ok(engine, "cp", f"{src}/.", "files:/tmp/contents")
    assert sorted(ok(engine, "exec", "files", "ls", "/tmp/contents").split()) == ["inner", "top.txt"]

    out = cli(engine, "cp", "files:/nonexistent", str(tmp_path))
    assert out.returncode == 1 and "Could not find the file /nonexistent" in out.stderr
    out = cli(engine, "cp", str(tmp_path / "nope"), "files:/tmp")
    assert out.returncode == 1 and "no such file or directory" in out.stderr
    tarball = subprocess.run([PYENGINE, "cp", "files:/srv/d/a", "-"], env=env_of(engine), capture_output=True,
                             check=True).stdout
    listing = subprocess.run(["tar", "-t"], input=tarball, capture_output=True, check=True).stdout
    assert listing == b"a\n"

