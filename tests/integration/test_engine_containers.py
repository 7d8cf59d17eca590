"""Container endpoints of pyengined, driven by the real docker CLI and the docker SDK."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator

import docker
import pytest

from tests.fixtures.daemons import EngineDaemon, mirrored_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry) -> Iterator[EngineDaemon]:
    """One engine for the module (Docker Hub mirrored by the fixture registry), busybox already pulled."""
    with mirrored_engine(str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def cli(engine: EngineDaemon, *args: str, input: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=engine.env(), capture_output=True, text=True, input=input,
                          timeout=timeout, check=False)


def ok(engine: EngineDaemon, *args: str, input: str | None = None) -> str:
    out = cli(engine, *args, input=input)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def curl(engine: EngineDaemon, method: str, path: str, body: str | None = None) -> tuple[int, str, str]:
    args = ["curl", "-sS", "--unix-socket", engine.address, "-X", method, "-o", "-",
            "-w", "\n%{http_code} %{content_type}", f"http://x{path}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", body]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    text, _, tail = out.rpartition("\n")
    status, _, ctype = tail.partition(" ")
    return int(status), ctype, text


def run_in_pty(engine: EngineDaemon, args: list[str], keys: list[bytes], timeout: float = 30) -> tuple[int, bytes]:
    """Run the docker CLI on a 30x100 terminal; type `keys` once the shell prompt shows."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("docker", ["docker", *args], engine.env())
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    out, typed, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        if not typed and b"# " in out:
            for k in keys:
                os.write(fd, k)
                time.sleep(0.3)
            typed = True
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


# docker run ------------------------------------------------------------------


def test_run_rm_prints_output_and_leaves_nothing(engine):
    out = cli(engine, "run", "--rm", "busybox", "echo", "hi")
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    assert ok(engine, "ps", "-aq") == ""


def test_run_exit_code_and_separate_streams(engine):
    out = cli(engine, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert out.returncode == 3
    assert out.stdout == "out\n"
    assert out.stderr == "err\n"


def test_run_missing_executable_exits_127_and_is_removed(engine):
    out = cli(engine, "run", "--rm", "busybox", "nosuchcmd")
    assert out.returncode == 127
    assert "executable file not found" in out.stderr
    assert ok(engine, "ps", "-aq") == ""


def test_run_without_rm_keeps_the_failed_start(engine):
    out = cli(engine, "run", "--name", "bad", "busybox", "/etc")
    assert out.returncode == 126, out.stderr
    state = json.loads(ok(engine, "inspect", "bad"))[0]["State"]
    assert state["Status"] == "created" and state["ExitCode"] == 126 and "permission denied" in state["Error"]


def test_run_pulls_a_missing_image_then_runs(engine, registry):
    out = cli(engine, "run", "--rm", f"{registry.host}/library/busybox:docker", "echo", "pulled")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "pulled\n"
    assert "Unable to find image" in out.stderr


def test_piped_stdin_reaches_the_container_and_closes(engine):
    out = cli(engine, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done", input="piped\ndata\n")
    assert (out.returncode, out.stdout) == (0, "piped\ndata\ndone\n"), out.stderr


def test_run_it_terminal_size_and_exit_code(engine):
    code, out = run_in_pty(engine, ["run", "-it", "--rm", "busybox", "sh"],
                           [b"stty size; echo hi-$((1+2))\r", b"exit 5\r"])
    assert code == 5, out
    assert b"30 100\r\n" in out and b"hi-3\r\n" in out
    assert ok(engine, "ps", "-aq") == ""


def test_detach_keys_leave_the_container_running(engine):
    code, out = run_in_pty(engine, ["run", "-it", "--name", "det", "busybox", "sh"], [b"echo before\r", b"\x10\x11"])
    assert code == 0, out
    assert b"before\r\n" in out
    assert ok(engine, "ps", "--format", "{{.Names}} {{.State}}") == "det running\n"


def test_twenty_concurrent_runs(engine):
    procs = [subprocess.Popen(["docker", "run", "--rm", "busybox", "echo", str(i)], env=engine.env(),
                              stdout=subprocess.PIPE, text=True) for i in range(20)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 20
    assert outputs == [f"{i}\n" for i in range(20)]
    assert ok(engine, "ps", "-aq") == ""


# detached containers ---------------------------------------------------------


def test_detached_lifecycle_ps_exec_stop_rm(engine):
    cid = ok(engine, "run", "-d", "--name", "web", "busybox", "sleep", "1000").strip()
    assert len(cid) == 64
    rows = ok(engine, "ps", "--format", "{{.ID}} {{.Names}} {{.Command}} {{.Status}}").splitlines()
    assert len(rows) == 1 and rows[0].startswith(f"{cid[:12]} web \"sleep 1000\" Up ")
    assert ok(engine, "exec", "web", "cat", "/etc/hostname") == cid[:12] + "\n"
    assert cli(engine, "exec", "web", "sh", "-c", "echo x; exit 7").returncode == 7
    assert ok(engine, "exec", "-i", "web", "cat", input="through stdin\n") == "through stdin\n"
    top = ok(engine, "top", "web").splitlines()
    assert top[0].split()[:2] == ["UID", "PID"] and top[1].endswith("sleep 1000")

    started = time.monotonic()
    assert ok(engine, "stop", "-t", "1", "web") == "web\n"
    assert time.monotonic() - started < 5
    assert ok(engine, "ps", "-q") == ""
    assert "Exited (137)" in ok(engine, "ps", "-a", "--format", "{{.Status}}")
    assert cli(engine, "stop", "web").returncode == 0  # 304: already stopped
    ok(engine, "rm", "web")
    gone = cli(engine, "inspect", "--type", "container", "web")
    assert gone.returncode == 1 and "No such container: web" in gone.stderr


def test_exec_errors_and_detached_exec(engine):
    ok(engine, "run", "-d", "--name", "ex", "busybox", "sleep", "1000")
    assert cli(engine, "exec", "ex", "nosuchcmd").returncode in (126, 127)
    ok(engine, "exec", "-d", "ex", "sh", "-c", "sleep 0.2; touch /tmp/marker")
    deadline = time.monotonic() + 10
    while cli(engine, "exec", "ex", "sh", "-c", "test -e /tmp/marker").returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ok(engine, "kill", "ex")
    out = cli(engine, "exec", "ex", "true")
    assert out.returncode != 0 and "is not running" in out.stderr
    # Right after its process ended, its exit on the way to the record or not: dockerd's words, in the stream
    # when the exec was created before the exit.
    for _ in range(5):
        ok(engine, "rm", "-f", "ex")
        ok(engine, "run", "-d", "--name", "ex", "busybox", "true")
        out = cli(engine, "exec", "ex", "true")
        assert out.returncode != 0 and "is not running" in out.stdout + out.stderr, out


def test_exec_it_terminal(engine):
    ok(engine, "run", "-d", "--name", "sh1", "busybox", "sleep", "1000")
    code, out = run_in_pty(engine, ["exec", "-it", "sh1", "sh"], [b"stty size\r", b"exit 4\r"])
    assert code == 4, out
    assert b"30 100\r\n" in out


def test_start_attach_kill_wait_restart_pause_rename(engine):
    ok(engine, "create", "--name", "once", "busybox", "sh", "-c", "echo started; exit 9")
    for _ in range(2):
        out = cli(engine, "start", "-a", "once")
        assert (out.returncode, out.stdout) == (9, "started\n")
    assert ok(engine, "wait", "once") == "9\n"

    ok(engine, "run", "-d", "--name", "k1", "busybox", "sleep", "1000")
    first_pid = json.loads(ok(engine, "inspect", "k1"))[0]["State"]["Pid"]
    ok(engine, "restart", "-t", "1", "k1")
    state = json.loads(ok(engine, "inspect", "k1"))[0]["State"]
    assert state["Running"] and state["Pid"] not in (0, first_pid)
    ok(engine, "pause", "k1")
    assert ok(engine, "ps", "--format", "{{.State}} {{.Status}}").startswith("paused Up")
    assert "is already paused" in cli(engine, "pause", "k1").stderr
    ok(engine, "unpause", "k1")
    ok(engine, "rename", "k1", "k2")
    assert ok(engine, "ps", "--format", "{{.Names}}") == "k2\n"
    # The runtime's parser (runtime.client.signals) refuses; the engine answers dockerd's 400 and message.
    for path in ("/containers/k2/kill?signal=NOPE", "/containers/k2/stop?signal=NOPE&t=1"):
        status, ctype, body = curl(engine, "POST", path)
        assert (status, ctype, json.loads(body)) == (400, "application/json", {"message": "Invalid signal: NOPE"})
    ok(engine, "kill", "k2")
    assert ok(engine, "wait", "k2") == "137\n"
    out = cli(engine, "kill", "k2")
    assert out.returncode == 1 and "is not running" in out.stderr


def test_stop_signal_and_auto_remove_on_stop(engine):
    ok(engine, "run", "-d", "--rm", "--name", "trap", "--stop-signal", "USR1", "busybox", "sh", "-c",
       "trap 'exit 42' USR1; while true; do sleep 0.1; done")
    started = time.monotonic()
    ok(engine, "stop", "trap")
    assert time.monotonic() - started < 5  # the trap ran: no wait for the 10 s timeout
    assert ok(engine, "ps", "-aq") == ""


def test_logs_history_follow_tail_timestamps(engine):
    ok(engine, "run", "-d", "--name", "lg", "busybox", "sh", "-c",
       "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.2; done; exit 4")
    follow = cli(engine, "logs", "-f", "lg")
    assert follow.returncode == 0
    assert follow.stdout == "out 1\nout 2\nout 3\n"
    assert follow.stderr == "err 1\nerr 2\nerr 3\n"
    tail = cli(engine, "logs", "-t", "--tail", "2", "lg")
    lines = tail.stdout.splitlines() + tail.stderr.splitlines()
    assert len(lines) == 2 and all(line.split(" ", 1)[0].endswith("Z") for line in lines)
    assert sorted(line.split(" ", 1)[1] for line in lines) == ["err 3", "out 3"]
    assert ok(engine, "wait", "lg") == "4\n"


def test_ps_filters_and_inspect_fields(engine):
    ok(engine, "create", "--name", "c1", "--label", "team=a", "-e", "X=1", "-w", "/tmp", "busybox", "true")
    assert cli(engine, "run", "--name", "c2", "--label", "team=b", "busybox", "sh", "-c", "exit 2").returncode == 2
    ok(engine, "run", "-d", "--name", "c3", "busybox", "sleep", "1000")

    def names(*args: str) -> list[str]:
        return ok(engine, "ps", "--format", "{{.Names}}", *args).split()

    assert names() == ["c3"]
    assert names("-a") == ["c3", "c2", "c1"]  # newest first
    assert names("-a", "--filter", "label=team=a") == ["c1"]
    assert names("-a", "--filter", "label=team") == ["c2", "c1"]
    assert names("--filter", "status=exited") == ["c2"]
    assert names("-a", "--filter", "exited=2") == ["c2"]
    assert names("-a", "--filter", "name=c1") == ["c1"]
    assert names("-a", "--filter", "ancestor=busybox") == ["c3", "c2", "c1"]
    # By image, as dockerd: another name of it, its ID, and the images made from it select its containers; a name
    # of nothing selects none.
    ok(engine, "tag", "busybox", "othername:1")
    image_id = ok(engine, "image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    assert names("-a", "--filter", "ancestor=othername:1") == ["c3", "c2", "c1"]
    assert names("-a", "--filter", f"ancestor={image_id[7:19]}") == ["c3", "c2", "c1"]
    ok(engine, "commit", "c1", "child:1")
    ok(engine, "create", "--name", "c4", "child:1")
    assert names("-a", "--filter", "ancestor=busybox") == ["c4", "c3", "c2", "c1"]
    assert names("-a", "--filter", "ancestor=child:1") == ["c4"]
    assert names("-a", "--filter", "ancestor=nosuchimage") == []
    ok(engine, "rm", "c4")
    ok(engine, "rmi", "child:1", "othername:1")
    assert names("-n", "1") == ["c3"]
    assert names("-a", "--filter", "network=bridge") == ["c3", "c2", "c1"]
    assert names("-a", "--filter", "health=healthy") == []
    assert ok(engine, "ps", "-a", "--filter", "name=c2", "--format", "{{.Status}}").startswith("Exited (2) ")

    doc = json.loads(ok(engine, "inspect", "c1"))[0]
    assert doc["Name"] == "/c1" and doc["Path"] == "true" and doc["Args"] == []
    assert doc["State"]["Status"] == "created" and doc["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
    assert doc["Config"]["Image"] == "busybox" and doc["Config"]["Labels"] == {"team": "a"}
    assert "X=1" in doc["Config"]["Env"] and doc["Config"]["WorkingDir"] == "/tmp"
    assert doc["Image"].startswith("sha256:") and doc["HostConfig"]["NetworkMode"] == "default"
    assert doc["NetworkSettings"]["Ports"] == {} and list(doc["NetworkSettings"]["Networks"]) == ["bridge"]
    assert doc["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""  # an address comes with a start
    assert ok(engine, "inspect", "-f", "{{.Id}}", doc["Id"][:8]) == doc["Id"] + "\n"  # by id prefix


def test_create_options_reach_the_container(engine, tmp_path):
    (tmp_path / "in.txt").write_text("from host\n")
    tmp_path.chmod(0o777)  # only the read-only mount may stop uid 1000 writing there
    out = ok(engine, "run", "--rm", "-v", f"{tmp_path}:/data:ro", "--hostname", "box", "-u", "1000:1000",
             "--memory", "64m", "--pids-limit", "50", "--cap-drop", "ALL", "busybox", "sh", "-c",
             "cat /data/in.txt; hostname; id -u; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null "
             "|| cat /sys/fs/cgroup/pids.max; touch /data/x 2>&1 | grep -c Read-only")
    assert out.splitlines() == ["from host", "box", "1000", "50", "1"]
    assert ok(engine, "run", "--rm", "--network", "host", "busybox", "hostname") == os.uname().nodename + "\n"
    assert ok(engine, "run", "--rm", "--init", "busybox", "sh", "-c", "ps -o comm | sed -n 2p").strip() in (
        "pyengine-init", "tini-static")


def test_errors_duplicate_name_unknown_container_bad_json(engine, sdk):
    cid = ok(engine, "create", "--name", "dup", "busybox", "true").strip()
    out = cli(engine, "create", "--name", "dup", "busybox", "true")
    assert out.returncode == 1
    assert (f'Conflict. The container name "/dup" is already in use by container "{cid}". You have to remove '
            "(or rename) that container to be able to reuse that name.") in out.stderr

    out = cli(engine, "rm", "nope")
    assert out.returncode == 1 and out.stderr.strip() == "Error response from daemon: No such container: nope"
    assert cli(engine, "rm", "-f", "nope").returncode == 0
    with pytest.raises(docker.errors.NotFound):
        sdk.containers.get("nope")

    status, ctype, body = curl(engine, "POST", "/v1.41/containers/create", "{bad")
    assert (status, ctype) == (400, "application/json") and "message" in json.loads(body)
    status, _, body = curl(engine, "POST", "/v1.41/containers/create", '{"Image": "nosuch:v1"}')
    assert (status, json.loads(body)) == (404, {"message": "No such image: nosuch:v1"})
    status, _, body = curl(engine, "POST", "/v1.41/containers/create?name=a/b", '{"Image": "busybox"}')
    assert status == 400 and "Invalid container name" in json.loads(body)["message"]

    ok(engine, "start", "dup")
    ok(engine, "run", "-d", "--name", "busy", "busybox", "sleep", "1000")
    out = cli(engine, "rm", "busy")
    assert out.returncode == 1
    assert "You cannot remove a running container" in out.stderr and "force remove" in out.stderr
    ok(engine, "rm", "-f", "busy")
    assert ok(engine, "ps", "-a", "--format", "{{.Names}}") == "dup\n"


# docker SDK ------------------------------------------------------------------


def test_sdk_run_create_start_wait_logs_exec(sdk):
    assert sdk.containers.run("busybox", ["sh", "-c", "echo hello"], remove=True) == b"hello\n"
    with pytest.raises(docker.errors.ContainerError):
        sdk.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)

    c = sdk.containers.create("busybox", ["sh", "-c", "echo a; echo b >&2; exit 2"], name="sdk1")
    c.start()
    assert c.wait() == {"Error": None, "StatusCode": 2}
    assert c.logs() == b"a\nb\n"
    assert c.logs(stderr=False) == b"a\n"
    c.reload()
    assert (c.status, c.attrs["State"]["ExitCode"]) == ("exited", 2)
    c.remove()

    d = sdk.containers.run("busybox", ["sleep", "1000"], detach=True, name="sdk2")
    assert d.exec_run(["sh", "-c", "echo x; exit 5"]) == (5, b"x\n")
    assert [x.name for x in sdk.containers.list()] == ["sdk2"]
    assert sdk.containers.list(all=True, filters={"label": ["nope=1"]}) == []
    d.stop(timeout=1)
    assert d.wait()["StatusCode"] == 137
    d.remove()
    with pytest.raises(docker.errors.NotFound):
        d.reload()


def test_wait_conditions_and_removed(engine, sdk):
    api = sdk.api
    c = api.create_container("busybox", ["sh", "-c", "sleep 0.5; exit 3"], host_config=api.create_host_config(
        auto_remove=True))
    assert api.wait(c["Id"], condition="not-running")["StatusCode"] == 0  # created: not running yet
    results: list[dict] = []
    waiter = threading.Thread(target=lambda: results.append(api.wait(c["Id"], condition="removed")))
    waiter.start()
    time.sleep(0.2)
    api.start(c["Id"])
    waiter.join(10)
    assert results == [{"Error": None, "StatusCode": 3}]
    # Beyond dockerd (issue 14: the logs of a `run --rm` outlive it): what AutoRemove removed stays inspectable
    # by ID as "removed" while its logs are kept (removed-logs-inspect "auto-removed"); dockerd answers 404.
    assert api.inspect_container(c["Id"])["State"]["Status"] == "removed"
    assert "removed" not in {x["State"] for x in api.containers(all=True)}


# restarts --------------------------------------------------------------------


def test_engine_restart_reconciles_exits(engine):
    ok(engine, "run", "-d", "--name", "r1", "busybox", "sh", "-c", "sleep 1; exit 6")
    ok(engine, "run", "-d", "--name", "r2", "busybox", "sleep", "1000")
    engine.stop()
    time.sleep(1.5)  # r1 exits while nobody listens
    engine.start()
    deadline = time.monotonic() + 10
    while "Exited (6)" not in ok(engine, "ps", "-a", "--filter", "name=r1", "--format", "{{.Status}}"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ok(engine, "ps", "--format", "{{.Names}}") == "r2\n"
    assert ok(engine, "exec", "r2", "echo", "alive") == "alive\n"
    ok(engine, "stop", "-t", "1", "r2")
    ok(engine, "start", "r1")
    assert ok(engine, "wait", "r1") == "6\n"
    assert ok(engine, "logs", "r1") == ""


def test_runtime_restart_keeps_exits_flowing(engine):
    ok(engine, "run", "-d", "--name", "rr", "busybox", "sh", "-c", "sleep 2; exit 5")
    engine.runtime.stop()
    engine.runtime.start()
    out = cli(engine, "wait", "rr", timeout=30)
    assert (out.returncode, out.stdout) == (0, "5\n"), out.stderr
    assert ok(engine, "run", "--rm", "busybox", "echo", "after") == "after\n"


def test_stats_one_shot_and_stream(engine, sdk):
    cli(engine, "run", "-d", "--name", "st", "--memory", "64m", "busybox", "sleep", "1000")
    out = cli(engine, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "st")
    assert out.returncode == 0, out.stderr
    name, usage = out.stdout.strip().split(" ", 1)
    assert name == "st" and "64MiB" in usage, out.stdout
    one = sdk.containers.get("st").stats(stream=False)
    assert one["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert one["cpu_stats"]["cpu_usage"]["total_usage"] > 0 and one["pids_stats"]["current"] >= 1
    # As dockerd: a single answer is the second of two samples, so its CPU percentage is of the last second.
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] > 0 and one["preread"] < one["read"]
    shot = sdk.api.get(sdk.api._url("/containers/st/stats"), params={"stream": "0", "one-shot": "1"}).json()
    assert shot["precpu_stats"]["cpu_usage"]["total_usage"] == 0 and shot["preread"] == "0001-01-01T00:00:00Z"
    stream = sdk.api.stats("st", stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert second["precpu_stats"]["cpu_usage"]["total_usage"] == first["cpu_stats"]["cpu_usage"]["total_usage"]
    stream.close()


def test_container_prune_removes_only_stopped(engine):
    cli(engine, "run", "-d", "--name", "keep", "busybox", "sleep", "1000")
    cli(engine, "run", "--name", "gone", "busybox", "true")
    cli(engine, "create", "--name", "gone2", "--label", "x=1", "busybox", "true")
    out = cli(engine, "container", "prune", "-f", "--filter", "label=x=1")
    assert out.returncode == 0, out.stderr
    names = cli(engine, "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert "gone2" not in names and {"keep", "gone"} <= set(names)
    out = cli(engine, "container", "prune", "-f")
    assert out.returncode == 0, out.stderr
    assert cli(engine, "ps", "-a", "--format", "{{.Names}}").stdout.split() == ["keep"]


def test_system_df(engine, sdk):
    cli(engine, "run", "-d", "--name", "dfc", "busybox", "sh", "-c", "echo data > /tmp/f; sleep 1000")
    out = cli(engine, "system", "df")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[:2] == ["TYPE", "TOTAL"]
    df = sdk.df()
    assert any("busybox:latest" in (i["RepoTags"] or []) and i["Containers"] >= 1 for i in df["Images"]), df
    mine = [c for c in df["Containers"] if c["Names"] == ["/dfc"]]
    assert mine and mine[0]["SizeRw"] > 0 and df["LayersSize"] > 0
