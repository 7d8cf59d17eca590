"""pyengine's create, attach, pause/unpause, rename, update, wait, diff, stats, the prune commands and the
management groups, against a test pyengined; where cheap, compared with the docker CLI on the same engine."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.daemons import EngineDaemon
from tests.fixtures.dockerd import MirroredDockerd
from tests.integration.test_pyengine_cli import (
    DAEMONS,
    PYENGINE,
    daemon_under_test,
    env_of,
    is_dockerd,
    on_terminal,
    until,
)


@pytest.fixture(scope="module", params=DAEMONS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           registry) -> Iterator[EngineDaemon | MirroredDockerd]:
    with daemon_under_test(request.param, str(tmp_path_factory.mktemp("rt")), registry.host) as e:
        yield e


@pytest.fixture(autouse=True)
def no_leftovers(engine: EngineDaemon) -> Iterator[None]:
    yield
    engine.reset()


def cli(engine: EngineDaemon, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYENGINE, *args], env=env_of(engine), capture_output=True, text=True, input=input,
                          timeout=60, check=False)


def docker(engine: EngineDaemon, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=engine.env(), capture_output=True, text=True, input=input,
                          timeout=60, check=False)


def ok(engine: EngineDaemon, *args: str, input: str | None = None) -> str:
    out = cli(engine, *args, input=input)
    assert out.returncode == 0, f"pyengine {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def inspect(engine: EngineDaemon, name: str, template: str) -> str:
    return ok(engine, "container", "inspect", "-f", template, name).strip()


def test_create_then_start_attach(engine):
    cid = ok(engine, "create", "--name", "cr", "-e", "A=1", "-l", "k=v", "busybox", "sh", "-c", "echo $A; exit 3")
    assert re.fullmatch(r"[0-9a-f]{64}\n", cid)
    assert inspect(engine, "cr", "{{.State.Status}} {{.Config.Labels.k}}") == "created v"
    out = cli(engine, "start", "-a", "cr")
    assert (out.returncode, out.stdout) == (3, "1\n")
    again = cli(engine, "create", "--name", "cr", "busybox")
    assert again.returncode == 1 and again.stderr.startswith("Error response from daemon: Conflict.")
    assert cli(engine, "create", "--bogus", "busybox").returncode == 125
    assert cli(engine, "container", "create", "-p", "99999:80", "busybox").returncode == 125


def test_pause_unpause(engine):
    ok(engine, "run", "-d", "--name", "pz", "busybox", "sleep", "60")
    assert ok(engine, "pause", "pz") == "pz\n"
    assert inspect(engine, "pz", "{{.State.Status}}") == "paused"
    again = cli(engine, "pause", "pz")
    assert again.returncode == 1 and again.stderr.endswith("is already paused\n")
    out = cli(engine, "unpause", "pz", "nosuch")
    assert (out.returncode, out.stdout) == (1, "pz\n")
    assert out.stderr == "Error response from daemon: No such container: nosuch\n"
    assert inspect(engine, "pz", "{{.State.Status}}") == "running"


def test_rename(engine):
    ok(engine, "create", "--name", "old", "busybox")
    assert ok(engine, "rename", "old", "new") == ""
    assert inspect(engine, "new", "{{.Name}}") == "/new"
    out = cli(engine, "rename", "old", "newer")
    assert out.returncode == 1
    assert out.stderr == ("Error response from daemon: No such container: old\n"
                          "Error: failed to rename container named old\n")
    empty = cli(engine, "container", "rename", "new", " ")
    assert (empty.returncode, empty.stderr) == (1, "Error: Neither old nor new names may be empty\n")


def test_update(engine):
    ok(engine, "run", "-d", "--name", "up", "busybox", "sleep", "60")
    none = cli(engine, "update", "up")
    assert (none.returncode, none.stderr) == (1, "you must provide one or more flags when using this command\n")
    out = cli(engine, "update", "-m", "64m", "--memory-swap", "-1", "--pids-limit", "50", "--cpus", "0.5",
              "--restart", "on-failure:2", "up", "nosuch")
    assert (out.returncode, out.stdout) == (1, "up\n"), out.stderr
    assert out.stderr == "Error response from daemon: No such container: nosuch\n"
    assert inspect(engine, "up", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} "
                                 "{{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}") == \
        "67108864 -1 50 500000000 on-failure"
    assert cli(engine, "update", "--kernel-memory", "1m", "up").returncode == 125


def test_wait(engine):
    ok(engine, "run", "-d", "--name", "w3", "busybox", "sh", "-c", "exit 3")
    ok(engine, "run", "-d", "--name", "w0", "busybox", "true")
    out = cli(engine, "wait", "w3", "nosuch", "w0")
    assert (out.returncode, out.stdout, out.stderr) == (1, "3\n0\n",
                                                        "Error response from daemon: No such container: nosuch\n")


def test_diff(engine):
    ok(engine, "run", "--name", "df", "busybox", "sh", "-c", "mkdir /x; touch /x/y; rm /bin/ls; echo > /etc/passwd")
    # Printed in the daemon's order, as the docker CLI does: pyengined sorts by path; dockerd's order changes
    # from one call to the next.
    expected = ["C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "A /x", "A /x/y"]
    listed = ok(engine, "diff", "df").splitlines()
    assert listed == expected if not is_dockerd(engine) else sorted(listed) == sorted(expected)
    assert sorted(ok(engine, "container", "diff", "df").splitlines()) == \
        sorted(docker(engine, "diff", "df").stdout.splitlines())
    assert cli(engine, "diff", "nosuch").returncode == 1


def test_attach_output_exit_code_and_refusals(engine):
    ok(engine, "run", "-d", "--name", "at", "busybox", "sh", "-c", "sleep 1; echo out; echo err >&2; exit 5")
    out = cli(engine, "attach", "at")
    assert (out.returncode, out.stdout, out.stderr) == (5, "out\n", "err\n")
    stopped = cli(engine, "attach", "at")
    assert (stopped.returncode, stopped.stderr) == (1, "You cannot attach to a stopped container, start it first\n")
    bad_keys = cli(engine, "attach", "--detach-keys", "ctrl-zz", "at")
    assert (bad_keys.returncode, bad_keys.stderr) == (125, "Invalid detach keys (ctrl-zz) provided\n")


def _attach_in_place(engine: EngineDaemon, *args: str) -> subprocess.Popen[str]:
    """`pyengine attach ARGS` once the daemon reports this attach (one more attach event than before it)."""
    def attaches() -> int:
        return ok(engine, "events", "--since", "0", "--until", f"{time.time():.3f}", "--filter",
                  f"container={args[-1]}", "--filter", "event=attach").count("attach")

    before = attaches()
    p = subprocess.Popen([PYENGINE, "attach", *args], env=env_of(engine), stdout=subprocess.PIPE, text=True)
    until(lambda: attaches() > before)
    return p


def test_attach_proxies_signals(engine):
    ok(engine, "run", "-d", "--name", "sig", "busybox", "sh", "-c",
       "trap 'echo got-term; exit 7' TERM; echo ready; sleep 60 & wait")
    until(lambda: "ready" in ok(engine, "logs", "sig"))
    bad = cli(engine, "attach", "--sig-proxy=maybe", "sig")
    assert bad.returncode == 125 and '"--sig-proxy"' in bad.stderr
    kept = _attach_in_place(engine, "--sig-proxy=false", "sig")
    try:
        kept.send_signal(signal.SIGTERM)
        assert kept.wait(timeout=30) == -signal.SIGTERM
    finally:
        kept.kill()
        kept.wait()
    assert inspect(engine, "sig", "{{.State.Running}}") == "true"
    p = _attach_in_place(engine, "sig")
    try:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 7
        assert p.stdout is not None and p.stdout.read() == "got-term\n"
    finally:
        p.kill()
        p.wait()


def test_attach_on_a_terminal_detaches_with_custom_keys(engine):
    ok(engine, "run", "-dit", "--name", "tt", "busybox", "sh")
    p = on_terminal(engine, "attach", "--detach-keys", "ctrl-a,x", "tt")
    # Once the attach is live, an Enter makes the shell print its prompt (a redraw on the resize may not come).
    for _ in range(30):
        p.write(b"\r")
        try:
            p.read_until(b"# ", timeout=0.5)
            break
        except AssertionError:
            continue
    p.read_until(b"# ")
    p.write(b"echo hi-$((2+3))\r")
    p.read_until(b"hi-5")
    p.write(b"\x01x")
    assert p.wait() == 0
    assert inspect(engine, "tt", "{{.State.Running}}") == "true"


def test_stats_no_stream_matches_docker(engine):
    ok(engine, "run", "-d", "--name", "st1", "busybox", "sleep", "60")
    ok(engine, "create", "--name", "st2", "busybox")
    lines = ok(engine, "stats", "--no-stream").splitlines()
    assert re.split(r"  +", lines[0]) == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                                          "BLOCK I/O", "PIDS"]
    assert [line.split()[1] for line in lines[1:]] == ["st1"]
    row = lines[1].split()
    assert re.fullmatch(r"\d+\.\d\d%", row[2]) and row[4] == "/" and row[-1] == "1"
    assert [line.split()[1] for line in ok(engine, "stats", "--no-stream", "-a").splitlines()[1:]] == ["st2", "st1"]
    fmt = "table {{.Container}}\t{{.Name}}\t{{.ID}}\t{{.PIDs}}"
    for args in (["--no-stream", "--format", fmt, "st1", "st2"], ["--no-stream", "--format", "{{json .PIDs}}", "st1"]):
        assert ok(engine, "stats", *args) == docker(engine, "stats", *args).stdout
    out = cli(engine, "stats", "--no-stream", "st1", "nosuch")
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == "Error response from daemon: No such container: nosuch\n"


def test_stats_live_table_redraws_in_place(engine):
    ok(engine, "run", "-d", "--name", "live", "busybox", "sleep", "60")
    p = on_terminal(engine, "stats", "live")
    p.read_until(b"live ")
    p.read_until(b"\x1b[J\x1b[H")  # one whole frame drawn, the next begun
    os.kill(p.pid, signal.SIGINT)
    assert p.wait() == 0
    assert b"CONTAINER ID   NAME" in p.out and b"\x1b[K" in p.out
    # Without names, a container started later joins the table.
    p = on_terminal(engine, "stats")
    p.read_until(b"live ")
    ok(engine, "run", "-d", "--name", "joiner", "busybox", "sleep", "60")
    p.read_until(b"joiner ")
    os.kill(p.pid, signal.SIGINT)
    assert p.wait() == 0


def test_prunes_ask_and_report(engine):
    ok(engine, "create", "--name", "dead", "busybox")
    ok(engine, "network", "create", "spare")
    # Asked and answered no: nothing goes, exit 0, the question as docker's.
    for args in (["system", "prune"], ["system", "prune", "-a", "--volumes"], ["container", "prune"],
                 ["image", "prune"], ["image", "prune", "-a"], ["builder", "prune"], ["builder", "prune", "-a"]):
        mine = cli(engine, *args, input="n\n")
        assert mine.returncode == 0, mine.stderr
        assert mine.stdout == docker(engine, *args, input="n\n").stdout, args
    assert "dead" in ok(engine, "ps", "-a")
    out = ok(engine, "system", "prune", "-f")
    assert re.fullmatch(r"Deleted Containers:\n[0-9a-f]{64}\n\nDeleted Networks:\nspare\n\n"
                        r"Total reclaimed space: \S+\n", out), out
    ok(engine, "create", "--name", "dead2", "busybox")
    out = ok(engine, "container", "prune", "-f")
    assert re.fullmatch(r"Deleted Containers:\n[0-9a-f]{64}\n\nTotal reclaimed space: \S+\n", out), out
    assert ok(engine, "image", "prune", "-f") == "Total reclaimed space: 0B\n"
    assert ok(engine, "builder", "prune", "-f", "--filter", "until=24h").startswith("Total reclaimed space: ")
    filtered = ["system", "prune", "-a", "--filter", "until=2h", "--filter", "label=x"]
    assert cli(engine, *filtered, input="n\n").stdout == docker(engine, *filtered, input="n\n").stdout
    refused = ["system", "prune", "-f", "--volumes", "--filter", "until=1h"]
    mine, theirs = cli(engine, *refused), docker(engine, *refused)
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr) == (
        1, 'ERROR: The "until" filter is not supported with "--volumes"\n')


def test_management_groups(engine):
    ok(engine, "container", "run", "-d", "--name", "grp", "busybox", "sleep", "60")
    assert ok(engine, "container", "ls", "--format", "{{.Names}}") == "grp\n"
    assert ok(engine, "container", "ps", "-q") == ok(engine, "ps", "-q")
    assert ok(engine, "container", "exec", "grp", "echo", "hi") == "hi\n"
    assert ok(engine, "container", "inspect", "-f", "{{.Name}}", "grp") == "/grp\n"
    assert ok(engine, "image", "ls", "-q") == ok(engine, "images", "-q")
    assert ok(engine, "image", "inspect", "-f", "{{.Os}}", "busybox") == "linux\n"
    assert ok(engine, "image", "tag", "busybox", "mine:1") == ""
    assert ok(engine, "image", "rm", "mine:1") == "Untagged: mine:1\n"
    assert ok(engine, "system", "info", "--format", "{{.OSType}}") == "linux\n"
    assert "container start" in ok(engine, "system", "events", "--since", "5m", "--until", "0s",
                                   "--filter", "container=grp", "--format", "{{.Type}} {{.Action}}")
    assert ok(engine, "container", "stop", "-t", "0", "grp") == "grp\n"
    assert ok(engine, "container", "rm", "grp") == "grp\n"
    missing = cli(engine, "image", "inspect", "nosuch")
    assert missing.returncode == 1 and missing.stdout == "[]\n"


_MASKS = [(re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b"), "<id>"),
          (re.compile(r"(\d+ seconds?|Less than a second|About a minute) ago"), "<time> ago"),
          (re.compile(r"Up (\d+ seconds?|Less than a second|About a minute)"), "Up <time>")]
SAME_AS_DOCKER = [
    ["diff", "cmp"], ["container", "diff", "cmp"], ["wait", "cmp"], ["wait", "nosuch"], ["pause", "nosuch"],
    ["unpause", "cmpr"], ["rename", "nosuch", "other"], ["rename", "cmp", ""], ["update", "cmpr"],
    ["attach", "cmp"], ["stats", "--no-stream", "--format", "{{.Name}} {{.Container}} {{.ID}} {{.PIDs}}", "cmpr"],
    ["stats", "--no-stream", "nosuch"], ["container", "inspect", "-f", "{{.Name}} {{.State.Status}}", "cmp"],
    ["container", "ls", "-a", "--format", "{{.Names}} {{.Status}}"], ["container", "prune"], ["image", "prune"],
]


def _masked(out: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    texts = [out.stdout, out.stderr]
    for pattern, mask in _MASKS:
        texts = [pattern.sub(mask, t) for t in texts]
    return out.returncode, texts[0], texts[1]


def test_same_output_as_docker(engine):
    assert cli(engine, "run", "--name", "cmp", "busybox", "sh", "-c", "touch /made; exit 2").returncode == 2
    ok(engine, "run", "-d", "--name", "cmpr", "busybox", "sleep", "60")
    differ = []
    for args in SAME_AS_DOCKER:
        mine, theirs = _masked(cli(engine, *args, input="n\n")), _masked(docker(engine, *args, input="n\n"))
        if mine != theirs:
            differ.append((args, mine, theirs))
    assert not differ, differ


def test_what_a_user_switching_from_docker_types_works_or_fails_in_its_words(engine, tmp_path):
    """From a comparison with the docker CLI 28 on one engine: aliases, and refusals that were tracebacks."""
    for group in ("container", "image", "network", "volume"):
        assert cli(engine, group, "list", "-q").returncode == 0, group
    out = cli(engine, "load", "-i", str(tmp_path / "nonexist.tar"))
    assert (out.returncode, out.stderr.strip()) == (1, f"open {tmp_path}/nonexist.tar: no such file or directory")
    out = cli(engine, "login", "-u", "someone", "localhost:1", input="")
    assert (out.returncode, out.stderr.strip()) == (1, "Error: Cannot perform an interactive login from a non TTY "
                                                       "device")
    ok(engine, "create", "--name", "cpsrc", "busybox", "true")
    out = cli(engine, "cp", "cpsrc:/bin/sh", str(tmp_path / "missing" / "sh"))
    assert out.returncode == 1 and "invalid output path: directory" in out.stderr
    assert not (tmp_path / "missing").exists()
    ok(engine, "rm", "cpsrc")
    piped = subprocess.run(f"{PYENGINE} version | head -1", shell=True, env=env_of(engine), capture_output=True,
                           text=True, timeout=60)
    assert piped.stdout == "Client:\n" and "Traceback" not in piped.stderr
